"""``python -m unforgotten``: the CLI, so launchers that run modules work
(``accelerate launch -m unforgotten finetune ...``, ``torchrun -m unforgotten ...``)."""

from .cli import main

if __name__ == "__main__":
    main()
