//! Address newtypes: [`PhysAddr`] and [`VirtAddr`] are distinct types so that a physical
//! address can never be passed where a virtual one is meant (and vice versa).
//!
//! Both wrap a `u64`, print as `0x…` hex, and parse from `0x…` hex or decimal. The
//! [`Address`] trait lets memory views be generic over the address space they read.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ParseError;

/// Common behaviour of address types, so that one memory trait serves both spaces.
pub trait Address:
    Copy + Ord + Eq + std::hash::Hash + fmt::Debug + fmt::Display + Send + Sync + 'static
{
    /// Short name of the address space ("physical", "virtual"), used in messages.
    const SPACE: &'static str;
    /// Wraps a raw value.
    fn from_u64(v: u64) -> Self;
    /// The raw value.
    fn to_u64(self) -> u64;
    /// `self + off`, or `None` on overflow.
    fn checked_add(self, off: u64) -> Option<Self> {
        self.to_u64().checked_add(off).map(Self::from_u64)
    }
    /// `self + off`, wrapping at 2^64.
    fn wrapping_add(self, off: u64) -> Self {
        Self::from_u64(self.to_u64().wrapping_add(off))
    }
}

macro_rules! address_type {
    ($name:ident, $space:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The zero address.
            pub const NULL: Self = Self(0);
            /// Wraps a raw value.
            #[inline]
            pub const fn new(v: u64) -> Self {
                Self(v)
            }
            /// The raw value.
            #[inline]
            pub const fn as_u64(self) -> u64 {
                self.0
            }
            /// Rounds down to a multiple of `align` (a power of two).
            #[inline]
            pub const fn align_down(self, align: u64) -> Self {
                Self(self.0 & !(align.wrapping_sub(1)))
            }
            /// Offset inside a block of `align` bytes (a power of two).
            #[inline]
            pub const fn offset_in(self, align: u64) -> u64 {
                self.0 & align.wrapping_sub(1)
            }
        }

        impl Address for $name {
            const SPACE: &'static str = $space;
            #[inline]
            fn from_u64(v: u64) -> Self {
                Self(v)
            }
            #[inline]
            fn to_u64(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                parse_u64(s).map(Self)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v)
            }
        }

        impl From<$name> for u64 {
            fn from(v: $name) -> u64 {
                v.0
            }
        }

        impl std::ops::Add<u64> for $name {
            type Output = Self;
            #[inline]
            fn add(self, rhs: u64) -> Self {
                Self(self.0.wrapping_add(rhs))
            }
        }

        impl std::ops::Sub<$name> for $name {
            type Output = u64;
            #[inline]
            fn sub(self, rhs: $name) -> u64 {
                self.0.wrapping_sub(rhs.0)
            }
        }
    };
}

address_type!(
    PhysAddr,
    "physical",
    "A guest-physical address (what a connector reads)."
);
address_type!(
    VirtAddr,
    "virtual",
    "A virtual address (what a process or the kernel sees)."
);

/// Parses an unsigned integer: `0x` hex (underscores allowed) or decimal.
pub fn parse_u64(s: &str) -> Result<u64, ParseError> {
    let t = s.trim();
    let bad = || ParseError::Number {
        input: s.to_string(),
    };
    if t.is_empty() {
        return Err(bad());
    }
    let clean: String = t.chars().filter(|c| *c != '_').collect();
    let r = if let Some(h) = clean
        .strip_prefix("0x")
        .or_else(|| clean.strip_prefix("0X"))
    {
        u64::from_str_radix(h, 16)
    } else {
        clean.parse::<u64>()
    };
    r.map_err(|_| bad())
}

/// A page size in bytes (always a power of two).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PageSize(u64);

impl PageSize {
    /// 4 KiB.
    pub const K4: Self = Self(4 << 10);
    /// 16 KiB (aarch64 granule).
    pub const K16: Self = Self(16 << 10);
    /// 64 KiB (aarch64 granule).
    pub const K64: Self = Self(64 << 10);
    /// 2 MiB.
    pub const M2: Self = Self(2 << 20);
    /// 4 MiB (x86 32-bit large page).
    pub const M4: Self = Self(4 << 20);
    /// 32 MiB (aarch64 16 KiB granule block).
    pub const M32: Self = Self(32 << 20);
    /// 512 MiB (aarch64 64 KiB granule block).
    pub const M512: Self = Self(512 << 20);
    /// 1 GiB.
    pub const G1: Self = Self(1 << 30);

    /// A page size from bytes; `None` unless a non-zero power of two.
    pub const fn new(bytes: u64) -> Option<Self> {
        if bytes.is_power_of_two() {
            Some(Self(bytes))
        } else {
            None
        }
    }
    /// Size in bytes.
    #[inline]
    pub const fn bytes(self) -> u64 {
        self.0
    }
    /// log2 of the size.
    #[inline]
    pub const fn shift(self) -> u32 {
        self.0.trailing_zeros()
    }
    /// Mask of the offset bits inside one page.
    #[inline]
    pub const fn mask(self) -> u64 {
        self.0 - 1
    }
}

impl fmt::Display for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::size::format_size(self.0))
    }
}

impl fmt::Debug for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageSize({self})")
    }
}

/// A page-frame number: a physical address divided by a page size.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The frame holding `addr` for pages of `size`.
    pub const fn of(addr: PhysAddr, size: PageSize) -> Self {
        Self(addr.0 >> size.shift())
    }
    /// The first address of the frame.
    pub const fn addr(self, size: PageSize) -> PhysAddr {
        PhysAddr(self.0 << size.shift())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        assert_eq!("0x1000".parse::<PhysAddr>().unwrap(), PhysAddr(0x1000));
        assert_eq!("4096".parse::<VirtAddr>().unwrap(), VirtAddr(4096));
        assert_eq!(
            "0xffff_8880_0000_0000".parse::<VirtAddr>().unwrap().0,
            0xffff_8880_0000_0000
        );
        assert!("0xg".parse::<PhysAddr>().is_err());
        assert!("".parse::<PhysAddr>().is_err());
        assert!("-1".parse::<PhysAddr>().is_err());
        assert!("0x1_0000_0000_0000_0000".parse::<PhysAddr>().is_err());
        assert_eq!(PhysAddr(0xdead).to_string(), "0xdead");
        assert_eq!(format!("{:?}", VirtAddr(16)), "VirtAddr(0x10)");
    }

    #[test]
    fn page_sizes() {
        assert_eq!(PageSize::K4.shift(), 12);
        assert_eq!(PageSize::M2.mask(), 0x1f_ffff);
        assert!(PageSize::new(3).is_none());
        assert!(PageSize::new(0).is_none());
        assert_eq!(Pfn::of(PhysAddr(0x5123), PageSize::K4), Pfn(5));
        assert_eq!(Pfn(5).addr(PageSize::K4), PhysAddr(0x5000));
        assert_eq!(PhysAddr(0x5123).align_down(0x1000), PhysAddr(0x5000));
    }
}
