"""``python -m attribkit``: the command line, also as launched by ``torchrun -m attribkit`` and ``accelerate launch -m attribkit``."""

from attribkit.cli import main

if __name__ == "__main__":
    main()
