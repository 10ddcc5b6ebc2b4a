"""The `syndicator` command (and `python -m syndicator`)."""

import gc


def run() -> None:
    """The command line, with the objects its imports make left out of cyclic collections.

    Why: the imports make some 55,000 objects (modules, classes, functions, compiled patterns)
    that live as long as the process. Collections during the imports find nothing to free, and
    every full collection after them walked them all again: ~50 ms of a one-post `build` at
    10,000 posts went to collections, most of it to these objects. They are frozen (gc.freeze)
    once imported, so later collections walk only what the command makes itself, and still
    free what it lets go (frozen objects are freed by their counts like any other).
    """
    gc.disable()
    try:
        from syndicator.cli import main
    finally:
        gc.freeze()
        gc.enable()
    main()


if __name__ == "__main__":
    run()
