//! `trm-plot`: what every PNG chart of the project shares (trm-train's learning curves and
//! budget charts, trm-scaling's accuracy-vs-compute charts): finding and registering a TrueType
//! font for chart text, once per process.

#![deny(missing_docs)]

use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

/// Where fonts usually are (Debian/Ubuntu, Fedora, Arch, macOS, Windows).
const CANDIDATES: [&str; 7] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Whether a font for chart text was found and registered as `sans-serif` (looked up once:
/// `TRM_PLOT_FONT`, then the usual system paths).
pub fn font_found() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let env = std::env::var("TRM_PLOT_FONT").ok();
        let found = env
            .iter()
            .map(String::as_str)
            .chain(CANDIDATES)
            .filter_map(|p| std::fs::read(p).ok())
            .any(|bytes| {
                // plotters keeps fonts for the whole process: leak the bytes once.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            });
        if !found {
            eprintln!(
                "note: no TrueType font found (set TRM_PLOT_FONT=/path/to/font.ttf): plots are drawn without text"
            );
        }
        found
    })
}
