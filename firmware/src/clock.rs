//! A 64-bit cycle counter from SysTick (present on every Cortex-M): the 24-bit down-counter
//! runs at the core clock and its wrap interrupt extends it.
//!
//! On a board this counts core cycles. QEMU's SysTick follows the host clock, unless QEMU runs
//! with `-icount shift=0`, where one tick is one executed instruction (exact instruction
//! counts come from the TCG plugin instead, see BENCHMARKS.md).

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;

/// SysTick reload value (the full 24 bits).
const RELOAD: u32 = 0x00FF_FFFF;

/// Completed SysTick periods.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Starts the counter on the core clock.
pub fn start(syst: &mut SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Cycles since [`start`].
pub fn now() -> u64 {
    loop {
        let before = WRAPS.load(Ordering::Relaxed);
        let current = SYST::get_current();
        // A wrap whose exception is pending but not yet taken (QEMU takes interrupts at
        // translation-block ends): count it if `current` was read after the reload.
        let pending = SCB::is_pendst_pending() && current > RELOAD / 2;
        if WRAPS.load(Ordering::Relaxed) == before {
            let wraps = u64::from(before) + u64::from(pending);
            return (wraps << 24) | u64::from(RELOAD - current);
        }
    }
}
