"""Checks that a file is a 64-bit little-endian ELF executable for an architecture.

Usage: python3 scripts/checks/elf_machine.py FILE ARCH, ARCH amd64 or arm64
(the platform names podman uses). Prints the machine it found; exits 1 if it
is not ARCH's, or if FILE is no ELF file.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import struct
import sys

# e_machine values (the ELF specification's EM_X86_64 and EM_AARCH64).
MACHINES = {62: "amd64", 183: "arm64"}


def machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        sys.exit(f"elf_machine: {path} is not a 64-bit little-endian ELF file")
    (number,) = struct.unpack_from("<H", head, 18)
    return MACHINES.get(number, f"e_machine {number}")


if __name__ == "__main__":
    path, want = sys.argv[1], sys.argv[2]
    found = machine(path)
    if found != want:
        sys.exit(f"elf_machine: {path} is built for {found}, not {want}")
    print(f"{path}: ELF for {found}")
