//! `trm-edge`: the `#![no_std]`, heap-free side of the Tiny Recursive Model project.
//!
//! Everything here runs on a microcontroller as well as on a Linux host: no allocation,
//! no panics reachable from input (every fallible operation returns a typed error), and
//! the caller owns all memory.
//!
//! Today the crate holds the Sudoku core ([`sudoku`]): the grid type, text parsing,
//! the answer checker and the official token encoding used by the network.

#![no_std]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod sudoku;
