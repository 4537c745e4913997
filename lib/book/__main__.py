"""``python -m lib.book``: build the book (see :mod:`lib.book.build`)."""

from lib.book.build import main

main()
