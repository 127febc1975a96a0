//! Memory that queries freed, given back to the OS once they are done. The
//! binary's allocator (mimalloc) keeps the pages a thread freed in that
//! thread's heap until the thread allocates again, and purges free memory
//! only when some thread next allocates: after a burst of heavy queries an
//! idle server kept hundreds of MiB it no longer used (reliability L4, M2).

use std::time::Duration;

/// For a runtime's `on_thread_park`: this thread's free pages go back to the
/// allocator's arenas, which [`start_purger`]'s thread purges.
pub fn on_thread_park() {
    // SAFETY: mi_collect takes no pointers; it collects the calling thread's
    // heap. Without mimalloc as the global allocator it finds that heap empty.
    unsafe { libmimalloc_sys::mi_collect(false) }
}

/// Starts a thread that every `period` returns to the OS what the
/// allocator's arenas have held free past its purge delay (1 s): with every
/// other thread idle, nothing else would.
pub fn start_purger(period: Duration) {
    let _ = std::thread::Builder::new()
        .name("audience-purge".into())
        .spawn(move || {
            // mimalloc collects nothing for a thread that never allocated
            drop(std::hint::black_box(Box::new(0_u64)));
            loop {
                std::thread::sleep(period);
                // SAFETY: as above; this thread's heap is empty, so this
                // purges the process-wide arenas only.
                unsafe { libmimalloc_sys::mi_collect(false) }
            }
        });
}
