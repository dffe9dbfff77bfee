//! The one spelling of every solver option and outcome, as the command lines, the output
//! formats and the firmware's serial protocol write them: `name()`, `Display`, `FromStr` and
//! `ALL` for [`HaltPolicy`], [`StopReason`], [`AttemptSource`], [`Selection`] and [`Pick`];
//! `Display` for [`AttemptKind`] (`plain`, `aug 3`, `noise 1`, `continue 2`).

use core::fmt;
use core::str::FromStr;

use super::attempts::{AttemptKind, AttemptSource, Pick, Selection};
use super::{HaltPolicy, StopReason};

/// A name that is none of a type's values (from `FromStr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What was being parsed ("halting policy", ...).
    pub what: &'static str,
    /// The accepted names, comma-separated.
    pub expected: &'static str,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {}: expected one of {}",
            self.what, self.expected
        )
    }
}

impl core::error::Error for UnknownName {}

macro_rules! names {
    ($ty:ident, $what:literal, $expected:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every value, in the documented order.
            pub const ALL: [$ty; [$($name),+].len()] = [$($ty::$variant),+];
            /// Every name, in the order of [`Self::ALL`].
            pub const NAMES: [&'static str; [$($name),+].len()] = [$($name),+];

            /// The name of this value.
            pub const fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(UnknownName { what: $what, expected: $expected }),
                }
            }
        }
    };
}

names!(HaltPolicy, "halting policy", "full, q, check, q+check", [
    Full => "full",
    Q => "q",
    Check => "check",
    QCheck => "q+check",
]);
names!(StopReason, "stop reason", "budget, q_halt, solved, stopped", [
    Budget => "budget",
    QHalt => "q_halt",
    Solved => "solved",
    Stopped => "stopped",
]);
names!(AttemptSource, "attempt source", "aug, noise, steps, mixed", [
    Aug => "aug",
    Noise => "noise",
    Steps => "steps",
    Mixed => "mixed",
]);
names!(Selection, "selection rule", "check, q, vote", [
    Check => "check",
    Q => "q",
    Vote => "vote",
]);
names!(Pick, "pick", "check, q, vote", [
    Check => "check",
    Q => "q",
    Vote => "vote",
]);

impl fmt::Display for AttemptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptKind::Plain => f.write_str("plain"),
            AttemptKind::Aug(n) => write!(f, "aug {n}"),
            AttemptKind::Noise(n) => write!(f, "noise {n}"),
            AttemptKind::Continue(n) => write!(f, "continue {n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn round_trip<T>(all: &[T], names: &[&str], expected: &str)
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr<Err = UnknownName>,
    {
        assert_eq!(all.len(), names.len());
        for (v, n) in all.iter().zip(names) {
            assert_eq!(v.to_string(), *n);
            assert_eq!(n.parse::<T>(), Ok(*v));
        }
        assert_eq!(names.join(", "), expected);
        let e = "nope".parse::<T>().unwrap_err();
        assert!(e.to_string().ends_with(expected), "{e}");
    }

    #[test]
    fn every_name_round_trips_and_the_lists_match() {
        round_trip(
            &HaltPolicy::ALL,
            &HaltPolicy::NAMES,
            "full, q, check, q+check",
        );
        round_trip(
            &StopReason::ALL,
            &StopReason::NAMES,
            "budget, q_halt, solved, stopped",
        );
        round_trip(
            &AttemptSource::ALL,
            &AttemptSource::NAMES,
            "aug, noise, steps, mixed",
        );
        round_trip(&Selection::ALL, &Selection::NAMES, "check, q, vote");
        round_trip(&Pick::ALL, &Pick::NAMES, "check, q, vote");
        let kinds = [
            AttemptKind::Plain,
            AttemptKind::Aug(3),
            AttemptKind::Noise(1),
            AttemptKind::Continue(2),
        ]
        .map(|k| k.to_string());
        assert_eq!(kinds, ["plain", "aug 3", "noise 1", "continue 2"]);
    }
}
