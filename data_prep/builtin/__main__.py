"""python -m data_prep.builtin: synthesise the built-in corpus (see data_prep.builtin.main)."""

from data_prep.builtin import main

main()
