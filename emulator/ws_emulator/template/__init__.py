"""The SAM template: loading, intrinsic functions and the specs the emulator runs."""
