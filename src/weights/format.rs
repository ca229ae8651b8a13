//! The safetensors format, read and written here without `std` or serde: 8 bytes of
//! header length `n` (little-endian), `n` bytes of a JSON object, then the tensors' data.
//! The object maps each tensor's name to `{"dtype": .., "shape": [..], "data_offsets":
//! [start, end]}` (offsets into the data, after the header), and may hold
//! `"__metadata__"`, a map of strings to strings.
//!
//! The reader is strict: anything but that object (other keys, other value types, a
//! repeated name or key, numbers that are not whole, trailing bytes but JSON whitespace)
//! is refused, as are offsets that leave a gap, overlap, or do not end where the input
//! ends, and a shape that does not hold exactly its bytes. Nothing is allocated from a
//! length read in the input before it is checked against the input's size, and nothing
//! recurses on the input, so no input can panic, exhaust memory or overflow the stack.
//!
//! The writer writes what the reference implementation (the `safetensors` crate) writes,
//! byte for byte: tensors ordered by dtype (widest first) then name, compact JSON, the
//! header padded with spaces to a multiple of 8 bytes.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// The reference implementation refuses headers longer than this.
pub(crate) const MAX_HEADER: usize = 100_000_000;

/// The dtypes of the format in the reference implementation's order (by alignment), with
/// their bits per element.
const DTYPES: [(&str, usize); 22] = [
    ("BOOL", 8),
    ("F4", 4),
    ("F6_E2M3", 6),
    ("F6_E3M2", 6),
    ("U8", 8),
    ("I8", 8),
    ("F8_E5M2", 8),
    ("F8_E4M3", 8),
    ("F8_E8M0", 8),
    ("F8_E4M3FNUZ", 8),
    ("F8_E5M2FNUZ", 8),
    ("I16", 16),
    ("U16", 16),
    ("F16", 16),
    ("BF16", 16),
    ("I32", 32),
    ("U32", 32),
    ("F32", 32),
    ("C64", 64),
    ("F64", 64),
    ("I64", 64),
    ("U64", 64),
];

/// A dtype of the format (its position in `DTYPES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Dtype(u8);

impl Dtype {
    pub(crate) const F32: Dtype = Dtype(17);
    pub(crate) const F64: Dtype = Dtype(19);
    pub(crate) const I64: Dtype = Dtype(20);

    fn parse(name: &str) -> Option<Dtype> {
        DTYPES
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| Dtype(i as u8))
    }

    /// Its name in the format: `"F32"`.
    pub(crate) fn name(self) -> &'static str {
        DTYPES[self.0 as usize].0
    }

    fn bits(self) -> usize {
        DTYPES[self.0 as usize].1
    }
}

/// One tensor of a file: its data is a slice of the input.
#[derive(Debug)]
pub(crate) struct Tensor<'a> {
    pub(crate) name: String,
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: &'a [u8],
}

/// A file read: its tensors in the order of their data, and its `__metadata__`.
#[derive(Debug)]
pub(crate) struct File<'a> {
    pub(crate) tensors: Vec<Tensor<'a>>,
    /// Checked like the rest; checkpoints keep their step and settings here.
    pub(crate) metadata: Vec<(String, String)>,
}

impl<'a> File<'a> {
    /// The tensor called `name`.
    pub(crate) fn tensor(&self, name: &str) -> Option<&Tensor<'a>> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The `__metadata__` value of `key`.
    pub(crate) fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a safetensors file. The error says what is wrong, in words.
pub(crate) fn read(bytes: &[u8]) -> Result<File<'_>, String> {
    let Some((len, rest)) = bytes.split_first_chunk::<8>() else {
        return Err("shorter than the 8-byte header length".into());
    };
    let n = u64::from_le_bytes(*len);
    if n > MAX_HEADER as u64 {
        return Err("the header length in the first 8 bytes is over 100 MB".into());
    }
    // at most MAX_HEADER, which fits any usize of 32 bits or more
    let n = n as usize;
    if n > rest.len() {
        return Err(format!(
            "the header length in the first 8 bytes runs past the end of the file \
             ({n} bytes of header, {} after the length)",
            rest.len()
        ));
    }
    let (header, data) = rest.split_at(n);
    let text = core::str::from_utf8(header).map_err(|e| {
        format!("the header is not the JSON of a safetensors file (not UTF-8: {e})")
    })?;
    let (entries, metadata) = Parser { text, at: 0 }
        .file()
        .map_err(|e| format!("the header is not the JSON of a safetensors file ({e})"))?;

    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("the tensor {:?} is in the header twice", w[0]));
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries[i].offsets);
    // The data, in offset order, must tile [0, data.len()) without gaps or overlaps.
    let mut end = 0usize;
    for &i in &order {
        let e = &entries[i];
        let (s, t) = e.offsets;
        if s != end || t < s {
            return Err(format!(
                "the data_offsets [{s}, {t}] of tensor {:?} {} (the tensors before it end \
                 at {end})",
                e.name,
                if t < s {
                    "end before they start"
                } else if s < end {
                    "overlap another tensor"
                } else {
                    "leave a gap"
                }
            ));
        }
        // in u64: on a 32-bit target the bits of a tensor of 512 MiB pass `usize`
        let bits = e
            .shape
            .iter()
            .try_fold(e.dtype.bits() as u64, |acc, &d| acc.checked_mul(d as u64));
        let fits = bits.is_some_and(|b| b % 8 == 0 && b / 8 == (t - s) as u64);
        if !fits {
            return Err(format!(
                "tensor {:?} of dtype {} and shape {:?} does not take the {} bytes of its \
                 data_offsets [{s}, {t}]",
                e.name,
                e.dtype.name(),
                e.shape,
                t - s
            ));
        }
        end = t;
    }
    if end != data.len() {
        return Err("the tensors' data does not end where the file ends".into());
    }
    let mut tensors = Vec::with_capacity(entries.len());
    let mut entries: Vec<Option<Entry>> = entries.into_iter().map(Some).collect();
    for i in order {
        if let Some(e) = entries[i].take() {
            let (s, t) = e.offsets;
            tensors.push(Tensor {
                name: e.name,
                dtype: e.dtype,
                shape: e.shape,
                data: &data[s..t],
            });
        }
    }
    Ok(File { tensors, metadata })
}

/// A tensor to write: its name, dtype, shape and little-endian data.
pub(crate) struct Out<'a> {
    pub(crate) name: &'a str,
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Vec<u8>,
}

/// Writes a safetensors file of `tensors`, without `__metadata__`, as the reference
/// implementation does. The error says why it cannot.
pub(crate) fn write(tensors: Vec<Out<'_>>) -> Result<Vec<u8>, String> {
    write_with(tensors, &[])
}

/// [`write`] with a `__metadata__` map (written first, keys sorted), unless it is empty.
pub(crate) fn write_with(
    mut tensors: Vec<Out<'_>>,
    metadata: &[(String, String)],
) -> Result<Vec<u8>, String> {
    let mut names: Vec<&str> = tensors.iter().map(|t| t.name).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("two tensors are named {:?}", w[0]));
    }
    // The reader takes this key for the metadata map: such a file would not read back.
    if tensors.iter().any(|t| t.name == "__metadata__") {
        return Err(
            "a tensor cannot be named \"__metadata__\": the format reserves the name \
                    for its metadata map"
                .into(),
        );
    }
    tensors.sort_by(|a, b| b.dtype.cmp(&a.dtype).then(a.name.cmp(b.name)));
    let mut header = String::from("{");
    if !metadata.is_empty() {
        let mut keys: Vec<&(String, String)> = metadata.iter().collect();
        keys.sort_unstable();
        header.push_str("\"__metadata__\":{");
        for (k, (key, value)) in keys.into_iter().enumerate() {
            if k > 0 {
                header.push(',');
            }
            json_string(&mut header, key);
            header.push(':');
            json_string(&mut header, value);
        }
        header.push('}');
        if !tensors.is_empty() {
            header.push(',');
        }
    }
    let mut offset = 0usize;
    for (k, t) in tensors.iter().enumerate() {
        if k > 0 {
            header.push(',');
        }
        json_string(&mut header, t.name);
        let _ = write!(header, ":{{\"dtype\":\"{}\",\"shape\":[", t.dtype.name());
        for (i, d) in t.shape.iter().enumerate() {
            let _ = write!(header, "{}{d}", if i > 0 { "," } else { "" });
        }
        let _ = write!(
            header,
            "],\"data_offsets\":[{offset},{}]}}",
            offset + t.data.len()
        );
        offset += t.data.len();
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    if header.len() > MAX_HEADER {
        return Err(format!(
            "the header (names and shapes) takes {} bytes, over the format's 100 MB",
            header.len()
        ));
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for t in &tensors {
        out.extend_from_slice(&t.data);
    }
    Ok(out)
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A tensor's entry in the header.
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    offsets: (usize, usize),
}

/// The header's JSON, read by hand: a fixed nesting (object of objects of strings and
/// arrays of numbers), so no recursion.
struct Parser<'a> {
    text: &'a str,
    at: usize,
}

type Parsed<T> = Result<T, String>;

/// The `__metadata__` map, in the header's order.
type Metadata = Vec<(String, String)>;

impl Parser<'_> {
    fn file(mut self) -> Parsed<(Vec<Entry>, Metadata)> {
        let mut entries = Vec::new();
        let mut metadata = None;
        self.ws();
        self.open('{')?;
        let mut first = true;
        while let Some(key) = self.next_key(&mut first)? {
            if key == "__metadata__" {
                if metadata.is_some() {
                    return Err("\"__metadata__\" twice".into());
                }
                metadata = Some(self.metadata()?);
            } else {
                let entry = self.entry(key)?;
                entries.push(entry);
            }
        }
        self.ws();
        if self.at != self.text.len() {
            return Err(self.unexpected("the end of the header"));
        }
        Ok((entries, metadata.unwrap_or_default()))
    }

    /// After `{` (`first`) or a value: the next key (and its `:`), or `None` at the
    /// closing `}`.
    fn next_key(&mut self, first: &mut bool) -> Parsed<Option<String>> {
        self.ws();
        match self.peek() {
            Some(b'}') => {
                self.at += 1;
                return Ok(None);
            }
            Some(b',') if !*first => {
                self.at += 1;
                self.ws();
            }
            _ if !*first => return Err(self.unexpected("',' or '}'")),
            _ => {}
        }
        *first = false;
        let key = self.string()?;
        self.ws();
        self.expect(b':')?;
        Ok(Some(key))
    }

    fn metadata(&mut self) -> Parsed<Metadata> {
        let mut map = Metadata::new();
        self.ws();
        self.open('{')?;
        let mut first = true;
        while let Some(key) = self.next_key(&mut first)? {
            self.ws();
            let value = self.string()?;
            map.push((key, value));
        }
        // Sorted, not pairwise: a header may hold millions of keys.
        let mut keys: Vec<&str> = map.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("the __metadata__ key {:?} twice", w[0]));
        }
        Ok(map)
    }

    fn entry(&mut self, name: String) -> Parsed<Entry> {
        let (mut dtype, mut shape, mut offsets) = (None, None, None);
        self.ws();
        self.open('{')?;
        let mut first = true;
        while let Some(key) = self.next_key(&mut first)? {
            self.ws();
            let seen = match key.as_str() {
                "dtype" => {
                    let s = self.string()?;
                    let d = Dtype::parse(&s)
                        .ok_or_else(|| format!("tensor {name:?} has the unknown dtype {s:?}"))?;
                    dtype.replace(d).is_some()
                }
                "shape" => shape.replace(self.numbers()?).is_some(),
                "data_offsets" => match self.numbers()?.as_slice() {
                    &[s, e] => offsets.replace((s, e)).is_some(),
                    other => {
                        return Err(format!(
                            "tensor {name:?} has {} data_offsets, not 2",
                            other.len()
                        ))
                    }
                },
                _ => return Err(format!("tensor {name:?} has an unknown key {key:?}")),
            };
            if seen {
                return Err(format!("tensor {name:?} has the key {key:?} twice"));
            }
        }
        let missing = |what: &str| format!("tensor {name:?} has no {what}");
        Ok(Entry {
            dtype: dtype.ok_or_else(|| missing("dtype"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
            offsets: offsets.ok_or_else(|| missing("data_offsets"))?,
            name,
        })
    }

    /// `[n, n, ...]` of whole numbers >= 0.
    fn numbers(&mut self) -> Parsed<Vec<usize>> {
        let mut v = Vec::new();
        self.open('[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(v);
        }
        loop {
            self.ws();
            v.push(self.number()?);
            self.ws();
            match self.bump() {
                Some(b',') => {}
                Some(b']') => return Ok(v),
                _ => return Err(self.unexpected_before("',' or ']'")),
            }
        }
    }

    /// A JSON number that is a whole number >= 0 and fits a `usize`.
    fn number(&mut self) -> Parsed<usize> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let mut end = start;
        while end < bytes.len()
            && matches!(bytes[end], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        {
            end += 1;
        }
        let digits = &self.text[start..end];
        if digits.is_empty() {
            return Err(self.unexpected("a number"));
        }
        let whole = digits.bytes().all(|b| b.is_ascii_digit());
        if !whole || (digits.len() > 1 && digits.starts_with('0')) {
            return Err(format!(
                "{digits:?} at byte {start} is not a whole number >= 0"
            ));
        }
        self.at = end;
        digits
            .parse()
            .map_err(|_| format!("{digits} at byte {start} is too large"))
    }

    /// A JSON string, unescaped.
    fn string(&mut self) -> Parsed<String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.at..];
            // the run of plain characters up to the next quote, escape or control byte
            let plain = rest
                .bytes()
                .position(|b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or_else(|| String::from("a string runs past the end of the header"))?;
            out.push_str(&rest[..plain]);
            self.at += plain;
            match self.bump() {
                Some(b'"') => return Ok(out),
                Some(b'\\') => {
                    let c = match self.bump() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode()?,
                        _ => return Err(self.unexpected_before("an escape")),
                    };
                    out.push(c);
                }
                _ => return Err(self.unexpected_before("no control character in a string")),
            }
        }
    }

    /// After `\u`: four hex digits, or a surrogate pair of two escapes.
    fn unicode(&mut self) -> Parsed<char> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if self.bump() != Some(b'\\') || self.bump() != Some(b'u') {
                return Err(self.unexpected_before("the second half of a surrogate pair"));
            }
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(format!("a lone surrogate before byte {}", self.at));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| format!("a lone surrogate before byte {}", self.at))
    }

    fn hex4(&mut self) -> Parsed<u32> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.unexpected("four hex digits"))?;
        self.at += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.unexpected("four hex digits"))
    }

    fn open(&mut self, c: char) -> Parsed<()> {
        self.expect(c as u8)
    }

    fn expect(&mut self, b: u8) -> Parsed<()> {
        if self.peek() == Some(b) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("{:?}", b as char)))
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek();
        if b.is_some() {
            self.at += 1;
        }
        b
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.text[self.at..].chars().next() {
            Some(c) => format!("expected {wanted} at byte {}, found {c:?}", self.at),
            None => format!("expected {wanted} at byte {}, found the end", self.at),
        }
    }

    /// As `unexpected`, for the byte just read.
    fn unexpected_before(&mut self, wanted: &str) -> String {
        self.at = self.at.saturating_sub(1);
        while !self.text.is_char_boundary(self.at) {
            self.at -= 1;
        }
        self.unexpected(wanted)
    }
}

#[cfg(test)]
mod tests;
