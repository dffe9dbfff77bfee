//! `trm-firmware`: solves Sudoku puzzles on a Cortex-M4F/M7 with a Tiny Recursive Model
//! embedded at build time (see `build.rs` for the model and board selection and the fit
//! checks, `trm_edge::protocol` for the serial protocol, `boards/` for the boards).
//!
//! At boot it verifies the embedded model (magic, version, CRC-32, tensor table) with
//! `trm-edge`, logs what it found with defmt, then answers one line per line read on the
//! board's serial port.

#![no_std]
#![no_main]

#[cfg(not(any(
    feature = "qemu-mps2-an386",
    feature = "nucleo-h743zi",
    feature = "nrf52840-dk"
)))]
compile_error!(
    "select exactly one board with a cargo feature: `--features qemu-mps2-an386`, \
     `--features nucleo-h743zi` or `--features nrf52840-dk` (see boards/)"
);

#[cfg(any(
    all(feature = "qemu-mps2-an386", feature = "nucleo-h743zi"),
    all(feature = "qemu-mps2-an386", feature = "nrf52840-dk"),
    all(feature = "nucleo-h743zi", feature = "nrf52840-dk"),
))]
compile_error!("more than one board feature is enabled: select exactly one (see boards/)");

#[cfg(any(
    feature = "qemu-mps2-an386",
    feature = "nucleo-h743zi",
    feature = "nrf52840-dk"
))]
mod app;
#[cfg_attr(
    feature = "qemu-mps2-an386",
    path = "../../boards/qemu-mps2-an386/board.rs"
)]
#[cfg_attr(
    feature = "nucleo-h743zi",
    path = "../../boards/nucleo-h743zi/board.rs"
)]
#[cfg_attr(feature = "nrf52840-dk", path = "../../boards/nrf52840-dk/board.rs")]
#[cfg(any(
    feature = "qemu-mps2-an386",
    feature = "nucleo-h743zi",
    feature = "nrf52840-dk"
))]
mod board;
#[cfg(any(
    feature = "qemu-mps2-an386",
    feature = "nucleo-h743zi",
    feature = "nrf52840-dk"
))]
mod clock;
#[cfg(any(
    feature = "qemu-mps2-an386",
    feature = "nucleo-h743zi",
    feature = "nrf52840-dk"
))]
mod memory;
