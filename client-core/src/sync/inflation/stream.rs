//! A forward-only reader of chunk bytes, plain or as they inflate, that counts what it
//! consumed and holds nothing but the reader's own buffer.

use std::io::{self, BufRead, Read};

use super::InflationError;

/// The most bytes a LEB128 number of 64 bits takes.
const MAX_LEB_BYTES: u32 = 10;

/// Reads `R` a byte or a number at a time. Any I/O error is inflation failing
/// ([`InflationError::CorruptDeflate`]): a slice never fails.
pub(super) struct Stream<R> {
    inner: R,
    consumed: u64,
}

impl<R: BufRead> Stream<R> {
    pub(super) fn new(inner: R) -> Self {
        Self { inner, consumed: 0 }
    }

    /// The bytes read so far.
    pub(super) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next bytes, without consuming them; empty at the end.
    fn peek(&mut self) -> Result<&[u8], InflationError> {
        self.inner
            .fill_buf()
            .map_err(|_| InflationError::CorruptDeflate)
    }

    pub(super) fn at_end(&mut self) -> Result<bool, InflationError> {
        Ok(self.peek()?.is_empty())
    }

    pub(super) fn byte(&mut self) -> Result<u8, InflationError> {
        let byte = *self.peek()?.first().ok_or(InflationError::Truncated)?;
        self.consume(1);
        Ok(byte)
    }

    /// Skips `n` bytes, reading them through.
    pub(super) fn skip(&mut self, mut n: u64) -> Result<(), InflationError> {
        while n > 0 {
            let available = self.peek()?.len();
            if available == 0 {
                return Err(InflationError::Truncated);
            }
            let step = usize::try_from(n).map_or(available, |n| n.min(available));
            self.consume(step);
            n -= step as u64;
        }
        Ok(())
    }

    /// Skips to the end; returns the bytes skipped.
    pub(super) fn skip_rest(&mut self) -> Result<u64, InflationError> {
        io::copy(self, &mut io::sink()).map_err(|_| InflationError::CorruptDeflate)
    }

    /// An unsigned LEB128 number, refused where Automerge refuses it
    /// (`storage/parse/leb128.rs`, `leb128_u64`): overlong, or past 64 bits.
    pub(super) fn uleb(&mut self) -> Result<u64, InflationError> {
        let (mut value, mut shift) = (0u64, 0u32);
        loop {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if (shift > 64 && byte > 1) || (shift > 7 && byte == 0) {
                    return Err(InflationError::BadNumber);
                }
                return Ok(value);
            }
            if shift > 64 {
                return Err(InflationError::BadNumber);
            }
        }
    }

    /// A signed LEB128 number of 64 bits at most.
    pub(super) fn sleb(&mut self) -> Result<i64, InflationError> {
        let (mut value, mut shift) = (0i64, 0u32);
        loop {
            let byte = self.byte()?;
            // The tenth byte holds the sign bit alone.
            if shift == 63 && byte != 0 && byte != 0x7f {
                return Err(InflationError::BadNumber);
            }
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1 << shift;
                }
                return Ok(value);
            }
        }
    }

    /// Skips one LEB128 number, signed or not, without decoding it.
    pub(super) fn skip_leb(&mut self) -> Result<(), InflationError> {
        for _ in 0..MAX_LEB_BYTES {
            if self.byte()? & 0x80 == 0 {
                return Ok(());
            }
        }
        Err(InflationError::BadNumber)
    }
}

impl<R: BufRead> Read for Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Stream<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.consumed += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{sleb, uleb};

    fn stream(bytes: &[u8]) -> Stream<&[u8]> {
        Stream::new(bytes)
    }

    #[test]
    fn numbers_decode_as_leb128() {
        assert_eq!(stream(&[0x00]).uleb(), Ok(0));
        assert_eq!(stream(&[0xe5, 0x8e, 0x26]).uleb(), Ok(624_485));
        assert_eq!(stream(&[0x7f]).sleb(), Ok(-1));
        assert_eq!(stream(&[0xc0, 0xbb, 0x78]).sleb(), Ok(-123_456));
        assert_eq!(stream(&[0x3f]).sleb(), Ok(63));
        let mut max = [0xffu8; 10];
        max[9] = 0x01;
        assert_eq!(stream(&max).uleb(), Ok(u64::MAX));
        let mut min = [0x80u8; 10];
        min[9] = 0x7f;
        assert_eq!(stream(&min).sleb(), Ok(i64::MIN));
    }

    #[test]
    fn malformed_numbers_are_refused() {
        // Overlong, past 64 bits, cut short.
        assert_eq!(stream(&[0x80, 0x00]).uleb(), Err(InflationError::BadNumber));
        let mut long = [0xffu8; 10];
        long[9] = 0x02;
        assert_eq!(stream(&long).uleb(), Err(InflationError::BadNumber));
        assert_eq!(stream(&long).sleb(), Err(InflationError::BadNumber));
        assert_eq!(
            stream(&[0xff; 11]).skip_leb(),
            Err(InflationError::BadNumber)
        );
        assert_eq!(stream(&[0x80]).sleb(), Err(InflationError::Truncated));
        assert_eq!(stream(&[1, 2]).skip(3), Err(InflationError::Truncated));
    }

    #[test]
    fn what_is_read_is_counted() {
        let mut s = stream(&[0x81, 0x01, 5, 6, 7, 8]);
        s.skip_leb().unwrap();
        s.skip(2).unwrap();
        assert_eq!(s.consumed(), 4);
        assert_eq!(s.skip_rest(), Ok(2));
        assert!(s.at_end().unwrap());
        assert_eq!(s.consumed(), 6);
    }

    proptest! {
        #[test]
        fn leb128_round_trips(unsigned in any::<u64>(), signed in any::<i64>()) {
            let (u, i) = (uleb(unsigned), sleb(signed));
            prop_assert_eq!(stream(&u).uleb(), Ok(unsigned));
            prop_assert_eq!(stream(&i).sleb(), Ok(signed));
            let mut skipped = stream(&i);
            skipped.skip_leb().unwrap();
            prop_assert_eq!(skipped.consumed(), i.len() as u64);
        }
    }
}
