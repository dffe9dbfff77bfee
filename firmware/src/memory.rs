//! What the build script decided (board, model, sizes), the embedded model, the solver arena,
//! stack painting and the instruction-count markers.

#![allow(unsafe_code)]

use core::sync::atomic::{AtomicU32, Ordering};

include!(concat!(env!("OUT_DIR"), "/build_info.rs"));

/// The model file at a 64-byte aligned address, so that every tensor is aligned.
#[repr(C, align(64))]
struct Aligned<T: ?Sized>(T);

/// The packed model, in flash.
static MODEL: Aligned<[u8; MODEL_LEN]> =
    Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/model.trm")));

/// The embedded model file.
pub fn model_bytes() -> &'static [u8] {
    &MODEL.0
}

/// The solver arena in `.bss` (zeroed at reset).
static mut ARENA: [f32; ARENA_LEN] = [0.0; ARENA_LEN];

/// The arena, handed out once.
pub fn take_arena() -> Option<&'static mut [f32]> {
    static TAKEN: AtomicU32 = AtomicU32::new(0);
    if TAKEN.swap(1, Ordering::Relaxed) != 0 {
        return None;
    }
    // SAFETY: the swap above lets exactly one caller through, so this is the only reference
    // to ARENA ever created; no interrupt handler touches it.
    Some(unsafe { &mut *core::ptr::addr_of_mut!(ARENA) })
}

unsafe extern "C" {
    /// Start of `.data` (= start of RAM) (cortex-m-rt's `link.x`).
    static __sdata: u32;
    /// First byte after `.bss`/`.uninit`: the stack may grow down to here.
    static __sheap: u32;
    /// Initial stack pointer (end of RAM).
    static _stack_start: u32;
}

/// Value painted into the free stack at boot.
const PAINT: u32 = 0xC0FF_EE55;
/// Bytes below the current stack pointer left unpainted (the painting code's own frame).
const PAINT_MARGIN: usize = 64;

fn addr_sheap() -> usize {
    core::ptr::addr_of!(__sheap) as usize
}

fn addr_stack_start() -> usize {
    core::ptr::addr_of!(_stack_start) as usize
}

/// Bytes of RAM taken by `.data` and `.bss` (the arena included).
pub fn static_ram() -> usize {
    let sdata = core::ptr::addr_of!(__sdata) as usize;
    addr_sheap().saturating_sub(sdata)
}

/// Paints the unused stack (from the end of `.bss` up to just below the current stack
/// pointer) so that [`peak_stack`] can find the deepest point the stack reached.
pub fn paint_stack() {
    let sp = cortex_m::register::msp::read() as usize;
    let mut p = (addr_sheap() + 3) & !3;
    let end = sp.saturating_sub(PAINT_MARGIN);
    while p < end {
        // SAFETY: [__sheap, sp - margin) is RAM that belongs to nobody yet (past every static,
        // below the live stack); word-aligned volatile writes.
        unsafe { (p as *mut u32).write_volatile(PAINT) };
        p += 4;
    }
}

/// Deepest stack use since [`paint_stack`], in bytes, and the room there is (end of RAM
/// minus the end of the statics).
pub fn peak_stack() -> (usize, usize) {
    let top = addr_stack_start();
    let mut p = (addr_sheap() + 3) & !3;
    while p < top {
        // SAFETY: reads of word-aligned RAM between the statics and the stack top.
        if unsafe { (p as *const u32).read_volatile() } != PAINT {
            break;
        }
        p += 4;
    }
    (top - p, top - addr_sheap())
}

/// Written by the markers (volatile, different values, so that neither is optimised away nor
/// merged with the other).
static mut MARK: u32 = 0;

/// Start marker of an instruction-count region (the QEMU plugin's `start=` address).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn trm_mark_start() {
    // SAFETY: a plain volatile store to a static that nothing reads (no references exist).
    unsafe { core::ptr::addr_of_mut!(MARK).write_volatile(0x5747_4152) };
}

/// Stop marker of an instruction-count region (the plugin's `stop=` address).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn trm_mark_stop() {
    // SAFETY: as in `trm_mark_start`.
    unsafe { core::ptr::addr_of_mut!(MARK).write_volatile(0x5053_544f) };
}

/// `TRM_BOARD=<name>;` in the image: `run.sh` reads it to pick the board's runner.
#[used]
static BOARD_MARKER: [u8; BOARD_MARKER_LEN] = BOARD_MARKER_BYTES;
