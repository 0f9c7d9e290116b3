//! Which serving thread the current code runs on, and values kept one per serving thread.
//!
//! Owns: the thread-local worker index, set once by each thread of the public listener
//! (`server.rs`) before it serves anything, and [`PerWorker`], which hands each thread its own
//! value (the upstream clients of `forward.rs`, so that a pooled connection and its task stay
//! on the thread that opened them).
//!
//! Never: panics on an index out of range (any other thread, such as the main runtime, an
//! admin request or a test, is worker 0).

use std::cell::Cell;

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as serving thread `index` (0-based).
pub fn set_index(index: usize) {
    INDEX.with(|i| i.set(index));
}

/// The current thread's worker index: 0 unless [`set_index`] said otherwise.
pub fn index() -> usize {
    INDEX.with(Cell::get)
}

/// One `T` per serving thread; at least one.
#[derive(Debug)]
pub struct PerWorker<T> {
    first: T,
    rest: Box<[T]>,
}

impl<T> PerWorker<T> {
    /// `make(i)` for each worker `i` in `0..workers` (at least worker 0).
    pub fn new(workers: usize, mut make: impl FnMut(usize) -> T) -> Self {
        let first = make(0);
        let rest = (1..workers).map(make).collect();
        Self { first, rest }
    }

    /// The current thread's value (worker 0's for an index out of range).
    pub fn get(&self) -> &T {
        match index().checked_sub(1) {
            Some(i) => self.rest.get(i).unwrap_or(&self.first),
            None => &self.first,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_gets_the_value_of_its_index_and_strangers_get_the_first() {
        let values = std::sync::Arc::new(PerWorker::new(3, |i| i * 10));
        assert_eq!(*values.get(), 0, "a thread that never set an index is worker 0");
        let seen: Vec<usize> = [0, 1, 2, 7]
            .into_iter()
            .map(|i| {
                let values = values.clone();
                std::thread::spawn(move || {
                    set_index(i);
                    assert_eq!(index(), i);
                    *values.get()
                })
                .join()
                .unwrap()
            })
            .collect();
        assert_eq!(seen, [0, 10, 20, 0]);
        assert_eq!(index(), 0, "other threads' indices do not leak");
    }

    #[test]
    fn zero_workers_still_has_one_value() {
        let values = PerWorker::new(0, |i| i + 1);
        assert_eq!(*values.get(), 1);
    }
}
