"""Stage 5, running: QEMU (semihosting or UART), the host, a real board (flashers, ports, serial reader),
the instruction-count plugin, and the record protocol the firmware streams."""
