//! Board glue for the nRF52840-DK (nRF52840, Cortex-M4F at 64 MHz), through `nrf52840-hal`.
//!
//! - Clock: the 64 MHz core clock from the external 32 MHz crystal (HFXO).
//! - Serial: UARTE0 (P0.06 TX, P0.08 RX), the J-Link virtual COM port, 115200 8N1.
//! - LED: LED1 (P0.13, active low), on while a puzzle is being solved.
//! - defmt over RTT and `panic-probe` (probe-rs prints both).

use core::convert::Infallible;

use defmt_rtt as _;
use nrf52840_hal::clocks::Clocks;
use nrf52840_hal::gpio::{Level, Output, Pin, PushPull, p0};
use nrf52840_hal::pac::{self, UARTE0};
use nrf52840_hal::uarte::{self, Baudrate, Parity, Uarte, UarteRx, UarteTx};
use panic_probe as _;

/// The J-Link virtual COM port (UARTE0 with DMA buffers in RAM), embedded-io.
pub struct Serial {
    tx: UarteTx<UARTE0>,
    rx: UarteRx<UARTE0>,
}

impl embedded_io::ErrorType for Serial {
    type Error = uarte::Error;
}

impl embedded_io::Read for Serial {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, uarte::Error> {
        embedded_io::Read::read(&mut self.rx, buf)
    }
}

impl embedded_io::Write for Serial {
    fn write(&mut self, buf: &[u8]) -> Result<usize, uarte::Error> {
        embedded_io::Write::write(&mut self.tx, buf)
    }

    fn flush(&mut self) -> Result<(), uarte::Error> {
        embedded_io::Write::flush(&mut self.tx)
    }
}

/// LED1 (P0.13), active low.
pub struct Led(Pin<Output<PushPull>>);

impl embedded_hal::digital::ErrorType for Led {
    type Error = Infallible;
}

impl embedded_hal::digital::OutputPin for Led {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0.set_high()
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0.set_low()
    }
}

/// The board's peripherals as the firmware uses them.
pub struct Parts {
    /// Serial line (UARTE0, J-Link VCP).
    pub serial: Serial,
    /// Status LED.
    pub led: Led,
}

/// HFXO, UARTE0 and the LED.
pub fn init(_cp: &mut cortex_m::Peripherals) -> Parts {
    let Some(p) = pac::Peripherals::take() else {
        panic!("device peripherals taken twice");
    };
    let _clocks = Clocks::new(p.CLOCK).enable_ext_hfosc();
    let port0 = p0::Parts::new(p.P0);
    let led = Led(port0.p0_13.into_push_pull_output(Level::High).degrade());
    let pins = uarte::Pins {
        txd: port0.p0_06.into_push_pull_output(Level::High).degrade(),
        rxd: port0.p0_08.into_floating_input().degrade(),
        cts: None,
        rts: None,
    };
    let uart = Uarte::new(p.UARTE0, pins, Parity::EXCLUDED, Baudrate::BAUD115200);
    let (Some(tx_buf), Some(rx_buf)) = (
        cortex_m::singleton!(: [u8; 64] = [0; 64]),
        cortex_m::singleton!(: [u8; 1] = [0; 1]),
    ) else {
        panic!("UARTE buffers taken twice");
    };
    let Ok((tx, rx)) = uart.split(tx_buf, rx_buf) else {
        panic!("UARTE0 buffers rejected");
    };
    defmt::info!("nrf52840-dk: HFXO on, UARTE0 at 115200");
    Parts {
        serial: Serial { tx, rx },
        led,
    }
}

/// There is no end of input on a UART; kept for the firmware's common loop.
pub fn finish() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
