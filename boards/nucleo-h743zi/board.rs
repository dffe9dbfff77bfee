//! Board glue for the NUCLEO-H743ZI (STM32H743ZI, Cortex-M7), through `stm32h7xx-hal`.
//!
//! - Clock: PLL1 from the 64 MHz HSI to 480 MHz (`VOS0`), instruction and data caches on.
//! - Serial: USART3 (PD8 TX, PD9 RX), wired to the ST-LINK virtual COM port, 115200 8N1.
//! - LED: LD1 (green, PB0), on while a puzzle is being solved.
//! - defmt over RTT and `panic-probe` (probe-rs prints both).

use core::convert::Infallible;

use defmt_rtt as _;
use panic_probe as _;
use stm32h7xx_hal::gpio::{Output, PB0, PushPull};
use stm32h7xx_hal::pac::{self, USART3};
use stm32h7xx_hal::prelude::*;
use stm32h7xx_hal::{rcc, serial};

/// The ST-LINK virtual COM port (embedded-io over the HAL's non-blocking USART).
pub struct Serial {
    tx: serial::Tx<USART3>,
    rx: serial::Rx<USART3>,
}

impl embedded_io::ErrorType for Serial {
    type Error = Infallible;
}

impl embedded_io::Read for Serial {
    /// Waits for a byte, then takes what else has already arrived. Framing, noise and
    /// overrun errors drop the byte (the line then fails to parse and gets an error reply).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        while n < buf.len() {
            match self.rx.read() {
                Ok(b) => {
                    buf[n] = b;
                    n += 1;
                }
                Err(nb::Error::WouldBlock) if n > 0 => break,
                Err(_) => {}
            }
        }
        Ok(n)
    }
}

impl embedded_io::Write for Serial {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &b in buf {
            let _ = nb::block!(self.tx.write(b));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        let _ = nb::block!(self.tx.flush());
        Ok(())
    }
}

/// LD1 (green, PB0), active high.
pub struct Led(PB0<Output<PushPull>>);

impl embedded_hal::digital::ErrorType for Led {
    type Error = Infallible;
}

impl embedded_hal::digital::OutputPin for Led {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0.set_low();
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0.set_high();
        Ok(())
    }
}

/// The board's peripherals as the firmware uses them.
pub struct Parts {
    /// Serial line (USART3, ST-LINK VCP).
    pub serial: Serial,
    /// Status LED.
    pub led: Led,
}

/// Clocks (480 MHz), caches, USART3 and the LED.
pub fn init(cp: &mut cortex_m::Peripherals) -> Parts {
    let Some(dp) = pac::Peripherals::take() else {
        panic!("device peripherals taken twice");
    };
    let pwrcfg = dp.PWR.constrain().vos0(&dp.SYSCFG).freeze();
    let ccdr = dp
        .RCC
        .constrain()
        // 480 MHz needs the high VCO range (192–960 MHz on rev V): the iterative strategy.
        .pll1_strategy(rcc::PllConfigStrategy::Iterative)
        .sys_ck(480.MHz())
        .freeze(pwrcfg, &dp.SYSCFG);
    cp.SCB.enable_icache();
    cp.SCB.enable_dcache(&mut cp.CPUID);
    let gpiob = dp.GPIOB.split(ccdr.peripheral.GPIOB);
    let gpiod = dp.GPIOD.split(ccdr.peripheral.GPIOD);
    let led = Led(gpiob.pb0.into_push_pull_output());
    let pins = (gpiod.pd8.into_alternate(), gpiod.pd9.into_alternate());
    let Ok(usart) = dp
        .USART3
        .serial(pins, 115_200.bps(), ccdr.peripheral.USART3, &ccdr.clocks)
    else {
        panic!("USART3 configuration rejected");
    };
    let (tx, rx) = usart.split();
    defmt::info!(
        "nucleo-h743zi: sys_ck {=u32} Hz",
        ccdr.clocks.sys_ck().raw()
    );
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
