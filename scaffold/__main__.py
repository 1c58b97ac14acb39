from scaffold.cli import main

# `python -m scaffold` behaves as the `scaffold` command (usage lines, shell completion)
main(prog_name="scaffold")
