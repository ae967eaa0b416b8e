//! [`Blocks`]: the instances of a Variable block.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};

/// The instances of a Variable block, read as a slice.
///
/// Most Variable blocks on the wire hold exactly one instance (the one id of a `PacketAck`,
/// the one `RegionInfo` of `SimStats`, the one agent of a `CoarseLocationUpdate`), so a single
/// instance is held inline and decoding it allocates nothing; two or more live in a `Vec`.
/// Equality compares the instances, whatever the representation.
#[derive(Clone)]
pub struct Blocks<T>(Repr<T>);

#[derive(Clone)]
enum Repr<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> Blocks<T> {
    /// No instances.
    #[inline]
    pub const fn new() -> Self {
        Blocks(Repr::Many(Vec::new()))
    }

    /// Exactly one instance, held inline.
    #[inline]
    pub const fn one(block: T) -> Self {
        Blocks(Repr::One(block))
    }

    /// The instances as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        match &self.0 {
            Repr::One(b) => std::slice::from_ref(b),
            Repr::Many(v) => v,
        }
    }

    /// The instances as a mutable slice.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        match &mut self.0 {
            Repr::One(b) => std::slice::from_mut(b),
            Repr::Many(v) => v,
        }
    }

    /// Appends an instance.
    pub fn push(&mut self, block: T) {
        self.0 = match std::mem::replace(&mut self.0, Repr::Many(Vec::new())) {
            Repr::Many(v) if v.capacity() == 0 => Repr::One(block),
            Repr::Many(mut v) => {
                v.push(block);
                Repr::Many(v)
            }
            Repr::One(first) => {
                let mut v = Vec::with_capacity(4);
                v.push(first);
                v.push(block);
                Repr::Many(v)
            }
        };
    }

    /// Removes every instance.
    pub fn clear(&mut self) {
        match &mut self.0 {
            Repr::One(_) => self.0 = Repr::Many(Vec::new()),
            Repr::Many(v) => v.clear(),
        }
    }

    /// The instances as a `Vec`.
    pub fn into_vec(self) -> Vec<T> {
        match self.0 {
            Repr::One(b) => vec![b],
            Repr::Many(v) => v,
        }
    }
}

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Deref for Blocks<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> DerefMut for Blocks<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: fmt::Debug> fmt::Debug for Blocks<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for Blocks<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Eq> Eq for Blocks<T> {}

impl<T: Hash> Hash for Blocks<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl<T: PartialEq> PartialEq<Vec<T>> for Blocks<T> {
    fn eq(&self, other: &Vec<T>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: PartialEq> PartialEq<[T]> for Blocks<T> {
    fn eq(&self, other: &[T]) -> bool {
        self.as_slice() == other
    }
}

impl<T: PartialEq, const N: usize> PartialEq<[T; N]> for Blocks<T> {
    fn eq(&self, other: &[T; N]) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T> From<Vec<T>> for Blocks<T> {
    fn from(v: Vec<T>) -> Self {
        Blocks(Repr::Many(v))
    }
}

impl<T, const N: usize> From<[T; N]> for Blocks<T> {
    fn from(a: [T; N]) -> Self {
        a.into_iter().collect()
    }
}

impl<T> From<Blocks<T>> for Vec<T> {
    fn from(b: Blocks<T>) -> Self {
        b.into_vec()
    }
}

impl<T> FromIterator<T> for Blocks<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        let Some(first) = iter.next() else {
            return Self::new();
        };
        let Some(second) = iter.next() else {
            return Self::one(first);
        };
        let mut v = Vec::with_capacity(iter.size_hint().0.saturating_add(2));
        v.push(first);
        v.push(second);
        v.extend(iter);
        Blocks(Repr::Many(v))
    }
}

impl<T> Extend<T> for Blocks<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for b in iter {
            self.push(b);
        }
    }
}

/// The owning iterator of [`Blocks`].
#[derive(Debug, Clone)]
pub struct IntoIter<T>(IterRepr<T>);

#[derive(Debug, Clone)]
enum IterRepr<T> {
    One(std::option::IntoIter<T>),
    Many(std::vec::IntoIter<T>),
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.0 {
            IterRepr::One(i) => i.next(),
            IterRepr::Many(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::One(i) => i.size_hint(),
            IterRepr::Many(i) => i.size_hint(),
        }
    }
}

impl<T> DoubleEndedIterator for IntoIter<T> {
    fn next_back(&mut self) -> Option<T> {
        match &mut self.0 {
            IterRepr::One(i) => i.next_back(),
            IterRepr::Many(i) => i.next_back(),
        }
    }
}

impl<T> ExactSizeIterator for IntoIter<T> {}

impl<T> IntoIterator for Blocks<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter(match self.0 {
            Repr::One(b) => IterRepr::One(Some(b).into_iter()),
            Repr::Many(v) => IterRepr::Many(v.into_iter()),
        })
    }
}

impl<'a, T> IntoIterator for &'a Blocks<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut Blocks<T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::Blocks;

    #[test]
    fn one_is_inline_and_equal_to_a_vec_of_one() {
        let one = Blocks::one(7u32);
        assert_eq!(one, Blocks::from(vec![7]));
        assert_eq!(one, vec![7]);
        assert_eq!(one.len(), 1);
        assert_eq!(one.into_iter().collect::<Vec<_>>(), vec![7]);
    }

    #[test]
    fn push_grows_from_empty_to_one_to_many() {
        let mut b = Blocks::new();
        assert!(b.is_empty());
        for i in 0..5u32 {
            b.push(i);
            assert_eq!(b.as_slice(), (0..=i).collect::<Vec<_>>().as_slice());
        }
        assert_eq!(b.iter().rev().copied().collect::<Vec<_>>(), [4, 3, 2, 1, 0]);
        b[2] = 9;
        assert_eq!(b, [0, 1, 9, 3, 4]);
        b.clear();
        assert!(b.is_empty());
        b.push(1);
        assert_eq!(b.into_vec(), vec![1]);
    }

    #[test]
    fn collect_and_extend_keep_order() {
        let none: Blocks<u8> = std::iter::empty().collect();
        assert!(none.is_empty());
        let one: Blocks<u8> = std::iter::once(3).collect();
        assert_eq!(one, [3]);
        let mut many: Blocks<u8> = (1..=3).collect();
        many.extend([4, 5]);
        assert_eq!(many, [1, 2, 3, 4, 5]);
        assert_eq!(many.clone().into_iter().len(), 5);
        assert_eq!(format!("{many:?}"), "[1, 2, 3, 4, 5]");
    }
}
