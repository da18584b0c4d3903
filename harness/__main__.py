"""`lab` and `python -m harness`: the command's own start, before anything heavy is imported."""

import os


def run() -> None:
    # the command uses no pydantic plugin, and looking for one reads every installed package's
    # metadata (~35 ms of every command); an explicit setting, even empty, is kept
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from harness.cli import main

    main()


if __name__ == "__main__":
    run()
