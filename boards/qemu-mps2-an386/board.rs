//! Board glue for QEMU `mps2-an386` (Cortex-M4F), the CI board.
//!
//! - Serial: ARM semihosting on the console (`:tt`): puzzles are read from QEMU's standard
//!   input, replies written to its standard output; end of input ends the program.
//! - defmt: frames go to QEMU's standard error (decode with `defmt-print -e <elf>`), so they
//!   never mix with the replies.
//! - LED: bit 0 of the FPGAIO `LED` register (0x4002_8000).
//! - Exit: `SYS_EXIT_EXTENDED`, so QEMU's exit status is the firmware's; a panic exits with
//!   101 and a HardFault with 102, so that a crash fails CI instead of hanging it.
//! - Clock: the FPGA's 25 MHz; nothing to set up.

use core::convert::Infallible;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m_rt::{ExceptionFrame, exception};
use cortex_m_semihosting::syscall;

/// Semihosting operation numbers (ARM semihosting specification).
const SYS_OPEN: usize = 0x01;
const SYS_WRITE: usize = 0x05;
const SYS_READ: usize = 0x06;
const SYS_EXIT_EXTENDED: usize = 0x20;
/// `ADP_Stopped_ApplicationExit`: with `SYS_EXIT_EXTENDED` the code is passed on.
const APPLICATION_EXIT: usize = 0x20026;

/// Opens the console `:tt` with an `fopen` mode number (0 = "r", 4 = "w", 8 = "a": stderr).
fn open_console(mode: usize) -> usize {
    let path = b":tt\0";
    let args = [path.as_ptr() as usize, mode, path.len() - 1];
    // SAFETY: SYS_OPEN reads `args` (three words) and the NUL-terminated path, both live for
    // the call; the debugger (QEMU) is always attached on this board.
    unsafe { syscall(SYS_OPEN, &args) }
}

/// Writes all of `bytes` to a semihosting handle.
fn write_handle(handle: usize, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let args = [handle, bytes.as_ptr() as usize, bytes.len()];
    // SAFETY: SYS_WRITE reads `bytes.len()` bytes from a live slice and the argument block.
    unsafe {
        syscall(SYS_WRITE, &args);
    }
}

/// Ends the program; QEMU exits with `code`.
pub fn exit(code: u32) -> ! {
    let args = [APPLICATION_EXIT, code as usize];
    loop {
        // SAFETY: SYS_EXIT_EXTENDED reads the two-word argument block; QEMU terminates.
        unsafe {
            syscall(SYS_EXIT_EXTENDED, &args);
        }
    }
}

/// The console as a byte stream (embedded-io): reads QEMU's stdin, writes its stdout.
pub struct Serial {
    stdin: usize,
    stdout: usize,
}

impl embedded_io::ErrorType for Serial {
    type Error = Infallible;
}

impl embedded_io::Read for Serial {
    /// Reads what the host has (at least one byte); `Ok(0)` at end of input.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        let args = [self.stdin, buf.as_mut_ptr() as usize, buf.len()];
        // SAFETY: SYS_READ writes at most `buf.len()` bytes into the live, exclusive `buf`.
        let not_read = unsafe { syscall(SYS_READ, &args) };
        Ok(buf.len().saturating_sub(not_read))
    }
}

impl embedded_io::Write for Serial {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        write_handle(self.stdout, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// LED 0 of the FPGAIO block.
pub struct Led;

/// Address of the FPGAIO `LED` register on AN386.
const FPGAIO_LED: *mut u32 = 0x4002_8000 as *mut u32;

impl embedded_hal::digital::ErrorType for Led {
    type Error = Infallible;
}

impl embedded_hal::digital::OutputPin for Led {
    fn set_low(&mut self) -> Result<(), Infallible> {
        // SAFETY: FPGAIO_LED is a device register of this machine, valid for volatile writes.
        unsafe { FPGAIO_LED.write_volatile(0) };
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        // SAFETY: as in `set_low`.
        unsafe { FPGAIO_LED.write_volatile(1) };
        Ok(())
    }
}

/// The board's peripherals as the firmware uses them.
pub struct Parts {
    /// Serial line (semihosting console).
    pub serial: Serial,
    /// Status LED (on while a puzzle is being solved).
    pub led: Led,
}

/// Sets the board up (nothing to clock here) and opens the console handles.
pub fn init(_cp: &mut cortex_m::Peripherals) -> Parts {
    let stdin = open_console(0);
    let stdout = open_console(4);
    STDERR.store(true, Ordering::Relaxed);
    Parts {
        serial: Serial { stdin, stdout },
        led: Led,
    }
}

/// Whether the console is open (defmt frames before `init` are dropped).
static STDERR: AtomicBool = AtomicBool::new(false);

/// A defmt global logger writing encoded frames to semihosting stderr.
mod logger {
    use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    #[defmt::global_logger]
    struct Logger;

    /// Whether a frame is being written (re-entrancy guard).
    static TAKEN: AtomicBool = AtomicBool::new(false);
    /// The stderr handle (0 = not yet opened).
    static HANDLE: AtomicUsize = AtomicUsize::new(0);
    /// Interrupt state saved by `acquire`.
    static mut RESTORE: critical_section::RestoreState = critical_section::RestoreState::invalid();
    /// The frame encoder.
    static mut ENCODER: defmt::Encoder = defmt::Encoder::new();

    fn sink(bytes: &[u8]) {
        if !super::STDERR.load(Ordering::Relaxed) {
            return;
        }
        let mut h = HANDLE.load(Ordering::Relaxed);
        if h == 0 {
            h = super::open_console(8);
            HANDLE.store(h, Ordering::Relaxed);
        }
        super::write_handle(h, bytes);
    }

    // SAFETY: `acquire`/`release` bracket every frame inside a critical section, and the
    // `TAKEN` flag refuses nesting, so `ENCODER` and `RESTORE` have one user at a time.
    unsafe impl defmt::Logger for Logger {
        fn acquire() {
            // SAFETY: released in `release`, which defmt always calls after `acquire`.
            let restore = unsafe { critical_section::acquire() };
            if TAKEN.swap(true, Ordering::Relaxed) {
                super::exit(103);
            }
            // SAFETY: inside the critical section, with TAKEN set: the only user.
            unsafe {
                RESTORE = restore;
                (*core::ptr::addr_of_mut!(ENCODER)).start_frame(sink);
            }
        }

        unsafe fn flush() {}

        unsafe fn release() {
            // SAFETY: called by defmt after `acquire`, still inside its critical section.
            unsafe {
                (*core::ptr::addr_of_mut!(ENCODER)).end_frame(sink);
                TAKEN.store(false, Ordering::Relaxed);
                critical_section::release(RESTORE);
            }
        }

        unsafe fn write(bytes: &[u8]) {
            // SAFETY: called by defmt between `acquire` and `release`.
            unsafe { (*core::ptr::addr_of_mut!(ENCODER)).write(bytes, sink) }
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    use core::fmt::Write;
    struct Stderr(usize);
    impl Write for Stderr {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            write_handle(self.0, s.as_bytes());
            Ok(())
        }
    }
    let _ = writeln!(Stderr(open_console(8)), "panic: {info}");
    exit(101)
}

#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    write_handle(open_console(8), b"HardFault\n");
    exit(102)
}

/// End of the program (end of input): exit status 0.
pub fn finish() -> ! {
    exit(0)
}

/// Whether the cycle counter counts real cycles (`false`: QEMU's SysTick follows host time,
/// or executed instructions with `-icount shift=0`).
#[allow(dead_code)]
pub const CYCLES_ARE_EXACT: bool = false;
