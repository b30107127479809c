//! Durations and optional values as a configuration file spells them.
//!
//! A duration is a string of whole numbers, each followed by its unit
//! (`"500ms"`, `"5s"`, `"10min"`, `"1h30min"`), or a bare integer, read as
//! milliseconds (what an environment-variable layer of a configuration
//! library tends to produce). A string without a unit is refused rather
//! than guessed. An optional value is the value itself or `"none"`.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, Unexpected, Visitor};
use serde::{Serialize, Serializer};

/// The units a duration may carry, largest first (the serialiser writes the
/// largest that divides the value exactly).
const UNITS: [(&str, u128); 8] = [
    ("h", 3_600_000_000_000),
    ("min", 60_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ns", 1),
];

/// What the error messages say a duration should look like.
const EXPECTED: &str =
    "a duration with its unit (\"500ms\", \"5s\", \"10min\", \"1h30min\") or an integer of milliseconds";

/// A [`Duration`] read from `"500ms"`-like strings or integer milliseconds,
/// written as a string in the largest exact unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HumanDuration(pub(crate) Duration);

impl HumanDuration {
    /// Parses `"500ms"`, `"1h 30min"`; `None` on anything else.
    fn parse(text: &str) -> Option<Duration> {
        let mut rest = text.trim();
        if rest.is_empty() {
            return None;
        }
        let mut nanos: u128 = 0;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return None;
            }
            let number: u128 = rest[..digits].parse().ok()?;
            rest = rest[digits..].trim_start();
            let unit_len = rest
                .find(|c: char| !c.is_alphabetic())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            let (_, scale) = UNITS.iter().find(|(name, _)| *name == unit)?;
            nanos = nanos.checked_add(number.checked_mul(*scale)?)?;
            rest = rest[unit_len..].trim_start();
        }
        let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
        Some(Duration::new(secs, (nanos % 1_000_000_000) as u32))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        let (unit, scale) = UNITS
            .iter()
            .find(|(_, scale)| nanos % scale == 0)
            .unwrap_or(&("ns", 1));
        write!(f, "{}{unit}", nanos / scale)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_u64<E: de::Error>(self, millis: u64) -> Result<HumanDuration, E> {
                Ok(HumanDuration(Duration::from_millis(millis)))
            }

            fn visit_i64<E: de::Error>(self, millis: i64) -> Result<HumanDuration, E> {
                u64::try_from(millis)
                    .map(|millis| HumanDuration(Duration::from_millis(millis)))
                    .map_err(|_| E::invalid_value(Unexpected::Signed(millis), &self))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<HumanDuration, E> {
                HumanDuration::parse(text)
                    .map(HumanDuration)
                    .ok_or_else(|| E::invalid_value(Unexpected::Str(text), &self))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

/// An optional value: the value, or `"none"` (also a format's null).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OrNone<T>(pub(crate) Option<T>);

impl<T: Serialize> Serialize for OrNone<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(value) => value.serialize(serializer),
            None => serializer.serialize_str("none"),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrNone<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrNoneVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for OrNoneVisitor<T> {
            type Value = OrNone<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or \"none\"")
            }

            fn visit_none<E: de::Error>(self) -> Result<OrNone<T>, E> {
                Ok(OrNone(None))
            }

            fn visit_unit<E: de::Error>(self) -> Result<OrNone<T>, E> {
                Ok(OrNone(None))
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<OrNone<T>, D::Error> {
                T::deserialize(d).map(|value| OrNone(Some(value)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<OrNone<T>, E> {
                if text == "none" {
                    return Ok(OrNone(None));
                }
                T::deserialize(text.into_deserializer()).map(|value| OrNone(Some(value)))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<OrNone<T>, E> {
                T::deserialize(n.into_deserializer()).map(|value| OrNone(Some(value)))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<OrNone<T>, E> {
                T::deserialize(n.into_deserializer()).map(|value| OrNone(Some(value)))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<OrNone<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(|value| OrNone(Some(value)))
            }
        }

        deserializer.deserialize_any(OrNoneVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<Duration> {
        HumanDuration::parse(text)
    }

    #[test]
    fn units_and_sums() {
        assert_eq!(parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse("10min"), Some(Duration::from_secs(600)));
        assert_eq!(parse("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse("250µs"), Some(Duration::from_micros(250)));
        assert_eq!(parse("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(parse(" 1h 30min "), Some(Duration::from_secs(5400)));
        assert_eq!(parse("1s500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("0s"), Some(Duration::ZERO));
    }

    #[test]
    fn refused() {
        for text in [
            "",
            "500",
            "ms",
            "5 sec",
            "1.5s",
            "-1s",
            "5s ms",
            "5x",
            "99999999999999999999999h",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn written_in_the_largest_exact_unit() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(50), "50ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(600), "10min"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_micros(3), "3us"),
            (Duration::new(1, 1), "1000000001ns"),
        ];
        for (duration, text) in cases {
            assert_eq!(HumanDuration(duration).to_string(), text);
            assert_eq!(parse(text), Some(duration), "{text} reads back");
        }
    }
}
