//! The id bitmaps of many groups, fed mostly in ascending id order (as the
//! member-range layout delivers members). An id above everything in its
//! group waits in the group's sorted tail, and tails are appended in bulk:
//! roaring finds a bitmap's maximum (for a bitset container, a scan from its
//! end of up to 1,024 words) once per tail, not once per id.

use datafusion::logical_expr::EmitTo;
use roaring::RoaringBitmap;

/// A group's tail is appended to its bitmap once it holds this many ids.
const TAIL: usize = 1024;
/// All tails are appended once together they hold this many ids (256 KiB).
const WAITING: usize = 1 << 16;

/// Per group, a bitmap of ids and a tail of ids waiting to join it.
#[derive(Debug, Default)]
pub(crate) struct IdSets {
    sets: Vec<RoaringBitmap>,
    /// Per group, the largest id in its bitmap or tail (`None`: unknown
    /// or empty).
    top: Vec<Option<u32>>,
    /// Per group, ids above every id in its bitmap, ascending.
    tails: Vec<Vec<u32>>,
    /// The groups whose tail may hold ids or capacity.
    waiting: Vec<usize>,
    /// Ids in all tails.
    waiting_ids: usize,
    /// Capacity of all tails, in ids.
    tail_capacity: usize,
}

impl IdSets {
    /// Makes room for groups `0..groups`.
    pub(crate) fn resize(&mut self, groups: usize) {
        self.sets.resize(groups, RoaringBitmap::new());
        self.top.resize(groups, None);
        self.tails.resize_with(groups, Vec::new);
    }

    /// Adds `id` to group `g`.
    #[inline]
    pub(crate) fn add(&mut self, g: usize, id: u32) {
        match self.top[g] {
            Some(top) if id == top => {}
            Some(top) if id < top => {
                self.append_tail(g);
                self.sets[g].insert(id);
            }
            _ => {
                let tail = &mut self.tails[g];
                if tail.capacity() == 0 {
                    self.waiting.push(g);
                }
                let capacity = tail.capacity();
                tail.push(id);
                self.tail_capacity += tail.capacity() - capacity;
                self.waiting_ids += 1;
                self.top[g] = Some(id);
                if tail.len() == TAIL {
                    self.append_tail(g);
                }
            }
        }
    }

    /// Appends the tails once they hold many ids; call after each batch.
    pub(crate) fn settle(&mut self) {
        if self.waiting_ids >= WAITING {
            self.append_all();
        }
    }

    /// ORs `partial` into group `g`.
    pub(crate) fn union(&mut self, g: usize, partial: RoaringBitmap) {
        self.append_tail(g);
        self.sets[g] |= partial;
        self.top[g] = self.sets[g].max();
    }

    /// Group `g`'s bitmap, without the ids still in its tail.
    pub(crate) fn set(&self, g: usize) -> &RoaringBitmap {
        &self.sets[g]
    }

    /// Group `g`'s bitmap with its tail appended.
    pub(crate) fn complete(&mut self, g: usize) -> &RoaringBitmap {
        self.append_tail(g);
        &self.sets[g]
    }

    /// Removes and returns the emitted groups' complete bitmaps.
    pub(crate) fn take(&mut self, emit_to: EmitTo) -> Vec<RoaringBitmap> {
        self.append_all();
        emit_to.take_needed(&mut self.top);
        emit_to.take_needed(&mut self.tails);
        emit_to.take_needed(&mut self.sets)
    }

    /// Heap bytes held besides the bitmaps' own.
    pub(crate) fn size(&self) -> usize {
        self.sets.capacity() * size_of::<RoaringBitmap>()
            + self.top.capacity() * size_of::<Option<u32>>()
            + self.tails.capacity() * size_of::<Vec<u32>>()
            + self.waiting.capacity() * size_of::<usize>()
            + self.tail_capacity * size_of::<u32>()
    }

    fn append_tail(&mut self, g: usize) {
        let (tail, set) = (&mut self.tails[g], &mut self.sets[g]);
        if tail.is_empty() {
            return;
        }
        self.waiting_ids -= tail.len();
        // Every tail id lies above the bitmap's maximum, so `append` takes
        // them all; `extend` only guards that promise.
        if set.append(tail.iter().copied()).is_err() {
            set.extend(tail.iter().copied());
        }
        tail.clear();
    }

    /// Appends every tail and frees their memory.
    fn append_all(&mut self) {
        for g in std::mem::take(&mut self.waiting) {
            self.append_tail(g);
            self.tail_capacity -= self.tails[g].capacity();
            self.tails[g] = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets_of(input: &[(usize, u32)], groups: usize) -> Vec<RoaringBitmap> {
        let mut sets = IdSets::default();
        sets.resize(groups);
        for (i, &(g, id)) in input.iter().enumerate() {
            sets.add(g, id);
            if i % 100 == 0 {
                sets.settle();
            }
        }
        sets.take(EmitTo::All)
    }

    fn plain(input: &[(usize, u32)], groups: usize) -> Vec<RoaringBitmap> {
        let mut sets = vec![RoaringBitmap::new(); groups];
        for &(g, id) in input {
            sets[g].insert(id);
        }
        sets
    }

    #[test]
    fn ids_in_any_order_give_each_group_its_set() {
        // ascending runs with repeats (the layout), past a tail's length and
        // into bitset containers, then ids below, between and equal to them
        let mut input = Vec::new();
        for id in 0..200_000u32 {
            input.push(((id % 7) as usize, id / 3));
            input.push(((id % 3) as usize, id));
        }
        for id in (0..300_000u32).rev().step_by(997) {
            input.push(((id % 7) as usize, id));
        }
        input.extend([(0, 5), (1, 199_999), (6, 70_000), (6, 70_000)]);
        assert_eq!(sets_of(&input, 7), plain(&input, 7));
    }

    #[test]
    fn emitting_the_first_groups_keeps_the_rest_whole() {
        let mut sets = IdSets::default();
        sets.resize(3);
        for id in 0..5_000 {
            sets.add((id % 3) as usize, id);
        }
        let first = sets.take(EmitTo::First(1));
        sets.add(0, 6); // group 1 before: below its top
        sets.add(1, 9_000); // group 2 before: above it
        let rest = sets.take(EmitTo::All);
        let want = |g: u32| {
            (0..5_000)
                .filter(|id| id % 3 == g)
                .collect::<RoaringBitmap>()
        };
        assert_eq!(first, vec![want(0)]);
        let mut one = want(1);
        one.insert(6);
        let mut two = want(2);
        two.insert(9_000);
        assert_eq!(rest, vec![one, two]);
    }

    #[test]
    fn a_union_joins_the_tail_and_the_partial_set() {
        let mut sets = IdSets::default();
        sets.resize(1);
        sets.add(0, 10);
        sets.add(0, 20);
        sets.union(0, RoaringBitmap::from_iter([15, 30]));
        sets.add(0, 25);
        sets.add(0, 40);
        assert_eq!(
            sets.take(EmitTo::All),
            vec![RoaringBitmap::from_iter([10, 15, 20, 25, 30, 40])]
        );
    }

    #[test]
    fn tails_are_appended_once_they_hold_many_ids() {
        let mut sets = IdSets::default();
        sets.resize(WAITING);
        for g in 0..WAITING {
            sets.add(g, g as u32);
        }
        assert!(sets.size() >= WAITING * size_of::<u32>());
        sets.settle();
        assert_eq!(sets.waiting_ids, 0);
        assert_eq!(sets.tail_capacity, 0);
        assert_eq!(sets.set(WAITING - 1).len(), 1);
    }
}
