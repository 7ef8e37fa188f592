"""The engines that run the loop: the ``Backend`` protocol both implement, the factory that picks
one, the embedded engine (in-process, SQLite) and the Kestra backend."""
