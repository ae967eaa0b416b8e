//! Parse errors and the limits that bound what a parser accepts.

/// Why a document was rejected. Every variant carries the byte offset in the input where the
/// problem was found (for XML, the offset the XML reader had reached).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended in the middle of a value (a truncated or cut-off document).
    #[error("unexpected end of input at byte {pos}: expected {expected}")]
    UnexpectedEof {
        /// Offset of the end of the input.
        pos: usize,
        /// What the parser was looking for.
        expected: &'static str,
    },
    /// A byte or element that does not belong where it was found (malformed document).
    #[error("syntax error at byte {pos}: expected {expected}, found {found}")]
    Syntax {
        /// Offset of the offending byte or element.
        pos: usize,
        /// What the parser was looking for.
        expected: &'static str,
        /// A short description of what was there instead.
        found: String,
    },
    /// Well-formed syntax holding a value that is not valid for its type (an out-of-range
    /// integer, a bad UUID, base64, date or UTF-8, ...).
    #[error("invalid {kind} at byte {pos}: {reason}")]
    InvalidValue {
        /// Offset where the value starts.
        pos: usize,
        /// The LLSD type being read (`"integer"`, `"uuid"`, `"date"`, ...).
        kind: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The document is well-formed but larger or deeper than the [`Limits`] allow: a peer
    /// sending more than we are willing to hold.
    #[error("{limit} limit of {max} exceeded at byte {pos}")]
    LimitExceeded {
        /// Offset where the limit was crossed.
        pos: usize,
        /// Which limit.
        limit: LimitKind,
        /// The configured maximum.
        max: usize,
    },
    /// Something other than whitespace follows the complete top-level value.
    #[error("unexpected data after the value at byte {pos}")]
    TrailingData {
        /// Offset of the first unexpected byte.
        pos: usize,
    },
    /// The XML reader rejected the document (bad tag, unbalanced element, bad entity, ...).
    #[error("malformed XML at byte {pos}: {message}")]
    Xml {
        /// Offset where the XML reader stopped.
        pos: usize,
        /// The XML reader's explanation.
        message: String,
    },
    /// A content type that is not one of the LLSD types (API misuse by the caller, or a peer
    /// answering with something that is not LLSD).
    #[error("content type {0:?} is not an LLSD type")]
    UnsupportedContentType(String),
}

impl Error {
    /// The byte offset the error refers to, when it has one.
    pub fn position(&self) -> Option<usize> {
        match self {
            Error::UnexpectedEof { pos, .. }
            | Error::Syntax { pos, .. }
            | Error::InvalidValue { pos, .. }
            | Error::LimitExceeded { pos, .. }
            | Error::TrailingData { pos }
            | Error::Xml { pos, .. } => Some(*pos),
            Error::UnsupportedContentType(_) => None,
        }
    }
}

/// Which of the [`Limits`] was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// [`Limits::max_depth`].
    Depth,
    /// [`Limits::max_elements`].
    Elements,
    /// [`Limits::max_string_len`].
    StringLen,
    /// [`Limits::max_binary_len`].
    BinaryLen,
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitKind::Depth => "nesting depth",
            LimitKind::Elements => "element count",
            LimitKind::StringLen => "string length",
            LimitKind::BinaryLen => "binary length",
        })
    }
}

/// Bounds on what a parser accepts, so that a hostile document cannot exhaust the stack or
/// memory. Set fields on [`Limits::default()`] or use the builder methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Deepest nesting of arrays and maps (a top-level container is depth 1). Values above
    /// [`Limits::MAX_DEPTH_CEILING`] are treated as the ceiling, since parsing recurses.
    pub max_depth: usize,
    /// Most values (of any type, containers included) in one document.
    pub max_elements: usize,
    /// Longest string, URI or map key, in bytes of UTF-8.
    pub max_string_len: usize,
    /// Longest binary value, in bytes after decoding.
    pub max_binary_len: usize,
}

impl Limits {
    /// The hard cap on [`Limits::max_depth`]. Parsers recurse once per level; at this depth
    /// they need about 150 KiB of stack in release builds and 450 KiB in debug builds.
    pub const MAX_DEPTH_CEILING: usize = 256;

    /// The defaults: depth 64, 1 000 000 elements, 16 MiB strings, 64 MiB binaries.
    pub const DEFAULT: Limits = Limits {
        max_depth: 64,
        max_elements: 1_000_000,
        max_string_len: 16 << 20,
        max_binary_len: 64 << 20,
    };

    /// These limits with another maximum depth.
    #[must_use]
    pub const fn with_max_depth(mut self, depth: usize) -> Limits {
        self.max_depth = depth;
        self
    }

    /// These limits with another maximum element count.
    #[must_use]
    pub const fn with_max_elements(mut self, n: usize) -> Limits {
        self.max_elements = n;
        self
    }

    /// These limits with another maximum string length.
    #[must_use]
    pub const fn with_max_string_len(mut self, n: usize) -> Limits {
        self.max_string_len = n;
        self
    }

    /// These limits with another maximum binary length.
    #[must_use]
    pub const fn with_max_binary_len(mut self, n: usize) -> Limits {
        self.max_binary_len = n;
        self
    }

    pub(crate) fn depth(&self) -> usize {
        self.max_depth.min(Self::MAX_DEPTH_CEILING)
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// Shared bookkeeping of the limits while one document is parsed.
pub(crate) struct Budget {
    pub limits: Limits,
    max_depth: usize,
    depth: usize,
    elements: usize,
}

impl Budget {
    pub fn new(limits: Limits) -> Budget {
        Budget {
            max_depth: limits.depth(),
            limits,
            depth: 0,
            elements: 0,
        }
    }

    /// Counts one more value.
    #[inline]
    pub fn element(&mut self, pos: usize) -> Result<(), Error> {
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(Error::LimitExceeded {
                pos,
                limit: LimitKind::Elements,
                max: self.limits.max_elements,
            });
        }
        Ok(())
    }

    /// How many more values may still come (to bound pre-allocation).
    #[inline]
    pub fn elements_left(&self) -> usize {
        self.limits.max_elements.saturating_sub(self.elements)
    }

    /// Enters a container.
    #[inline]
    pub fn enter(&mut self, pos: usize) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(Error::LimitExceeded {
                pos,
                limit: LimitKind::Depth,
                max: self.max_depth,
            });
        }
        Ok(())
    }

    /// Leaves a container.
    #[inline]
    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    #[inline]
    pub fn check_string(&self, len: usize, pos: usize) -> Result<(), Error> {
        if len > self.limits.max_string_len {
            return Err(Error::LimitExceeded {
                pos,
                limit: LimitKind::StringLen,
                max: self.limits.max_string_len,
            });
        }
        Ok(())
    }

    #[inline]
    pub fn check_binary(&self, len: usize, pos: usize) -> Result<(), Error> {
        if len > self.limits.max_binary_len {
            return Err(Error::LimitExceeded {
                pos,
                limit: LimitKind::BinaryLen,
                max: self.limits.max_binary_len,
            });
        }
        Ok(())
    }
}

/// Pre-allocation for a container announcing `count` children: never more than the input or
/// the element budget could possibly fill, and never a huge block up front.
#[inline]
pub(crate) fn capacity_hint(count: usize, bytes_left: usize, budget: &Budget) -> usize {
    count.min(bytes_left).min(budget.elements_left()).min(1024)
}
