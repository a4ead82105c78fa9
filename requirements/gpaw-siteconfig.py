# GPAW build configuration, given to GPAW's setup.py through GPAW_CONFIG by the Makefile.
# GPAW 26.7 compiles its C sources as C++. With no `compiler` here and no `mpic++` on PATH it leaves the choice
# to setuptools, which calls the Python build's `gcc`: gcc compiles `.c` files as C and the build fails
# (`fatal error: algorithm: No such file or directory`). Naming g++ makes the build the same on every machine.
# Serial build: the labeler runs one process per label; MPI would need an MPI compiler the README does not ask for.
compiler = 'g++'
mpi = False
