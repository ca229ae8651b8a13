//! The crew: helper threads of our own that take pieces of a kernel's work, waiting for
//! it by spinning, as OpenMP's active wait policy does, rather than asleep.
//!
//! A `rayon_core::join` from a thread outside rayon's pool injects the job and sleeps until
//! a worker has run it. Measured on this project's 2-vCPU virtual machine: 22–26 µs for a
//! join of two empty pieces issued back to back, 60 µs after 100 µs idle (waking a halted
//! virtual CPU). A GEMM that shares its packed panels among threads synchronises twice per
//! block of depths, so a join of that cost would eat the gain of the second core on any
//! product below some milliseconds. A helper that spins between jobs picks a piece up in
//! well under a microsecond; after [`SPIN`] without work it parks, and the next job wakes
//! it (its first piece then waits for that wake-up, as a join would).
//!
//! Pieces are handed out one at a time to whichever thread asks first, the leader (the
//! caller) included, so a helper that is slow to come (parked, or sharing a CPU with the
//! leader) takes fewer pieces rather than holding the job up; both the spinning helpers and
//! the waiting leader yield their CPU every few spins, so that two of them placed on one
//! CPU by the scheduler still make progress. The bits of every piece are its own, whoever
//! runs it.
//!
//! Caveat, measured: on the 2-vCPU virtual machine above, the M configuration's step
//! (products of 2²²·⁶ multiply-adds) on 2 threads runs, for seconds at a time, 2.3× its
//! time on 1 thread (580–740 µs against 235–250 the rest of the time), about one second in
//! eight. It does so with the two threads pinned to different CPUs and with pieces four
//! times finer (so the leader could take a slow helper's share); steal time does not move;
//! and the step on one thread slows in the same minutes too (280 → 330+ µs): the host's
//! cores or memory are shared with other work. (Not the packed panel's crossing between
//! cores as such: a 512 KiB buffer written on one CPU reads on the other in 7.2 µs here,
//! against 6.8 µs from the reader's own cache.)
//!
//! One thread at a time leads the crew (hands out pieces); a call that finds the crew
//! taken, or comes from a helper running a piece, gets `false` and splits another way.
//!
//! Pieces are claimed through one atomic word that holds the job's number, its count of
//! pieces and the next piece to hand out: a helper that read a finished job's word can
//! never claim a piece of the next one (its compare-exchange fails, the number changed),
//! so it only dereferences the job after a claim, while the leader still waits for it.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long a helper spins for a job before parking.
const SPIN: Duration = Duration::from_micros(300);

/// At most this many helpers (threads beyond the leader).
const MAX_HELPERS: usize = 63;

/// Pieces of one job are numbered in 16 bits of the ticket.
pub(super) const MAX_PIECES: usize = (1 << 15) - 1;

type Job<'a> = &'a (dyn Fn(usize) + Sync);

struct Slot {
    thread: OnceLock<Thread>,
    parked: AtomicBool,
}

struct Crew {
    /// Job number (high 32 bits), pieces (16 bits), next piece (low 16 bits).
    ticket: AtomicU64,
    /// The current job: a `*const Job<'_>` on the leader's stack, valid while it has
    /// unfinished pieces.
    job: AtomicPtr<()>,
    done: AtomicUsize,
    /// Whether a piece of the current job panicked on a helper.
    panicked: AtomicBool,
    /// Whether some thread leads the crew.
    led: AtomicBool,
    spawned: AtomicUsize,
    spawning: Mutex<()>,
    slots: [Slot; MAX_HELPERS],
}

static CREW: Crew = Crew {
    ticket: AtomicU64::new(0),
    job: AtomicPtr::new(core::ptr::null_mut()),
    done: AtomicUsize::new(0),
    panicked: AtomicBool::new(false),
    led: AtomicBool::new(false),
    spawned: AtomicUsize::new(0),
    spawning: Mutex::new(()),
    slots: [const {
        Slot {
            thread: OnceLock::new(),
            parked: AtomicBool::new(false),
        }
    }; MAX_HELPERS],
};

thread_local! {
    /// Set on the crew's own threads.
    static HELPER: Cell<bool> = const { Cell::new(false) };
    /// Set while this thread runs a piece of a job.
    static IN_PIECE: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is running a piece of the crew's job: a kernel called there runs
/// on it alone (the job's pieces already use the other threads; a split would have to go
/// to rayon's pool, whose threads wake in tens of microseconds and then share the CPUs
/// with the crew's).
pub(super) fn in_piece() -> bool {
    IN_PIECE.with(Cell::get)
}

fn pack(number: u64, pieces: usize, next: usize) -> u64 {
    number << 32 | (pieces as u64) << 16 | next as u64
}

/// `(pieces, next)` of a ticket.
fn unpack(t: u64) -> (usize, usize) {
    (((t >> 16) & 0xffff) as usize, (t & 0xffff) as usize)
}

/// Claims and runs pieces of the current job until none is left to hand out; returns
/// how many it ran.
fn work() -> usize {
    let mut ran = 0;
    loop {
        let t = CREW.ticket.load(Acquire);
        let (pieces, next) = unpack(t);
        if next >= pieces {
            return ran;
        }
        let job = CREW.job.load(Acquire);
        if CREW
            .ticket
            .compare_exchange_weak(t, t + 1, AcqRel, Relaxed)
            .is_ok()
        {
            // SAFETY: the claim succeeded, so piece `next` of the job the ticket names is
            // unfinished, and its leader waits in `run` with `job` (stored before the
            // ticket was published, read after it) alive on its stack.
            let f = unsafe { *(job as *const Job<'_>) };
            // A piece that panics still counts as done, so that the leader, which
            // re-raises the panic, never waits for it nor returns while others run.
            let outer = IN_PIECE.with(|p| p.replace(true));
            if catch_unwind(AssertUnwindSafe(|| f(next))).is_err() {
                CREW.panicked.store(true, Relaxed);
            }
            IN_PIECE.with(|p| p.set(outer));
            CREW.done.fetch_add(1, Release);
            ran += 1;
        }
    }
}

fn helper(w: usize) {
    HELPER.with(|h| h.set(true));
    let slot = &CREW.slots[w];
    loop {
        let mut idle = Instant::now();
        let mut spins = 0u32;
        loop {
            if work() > 0 {
                idle = Instant::now();
            }
            core::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % 64 == 0 {
                if idle.elapsed() > SPIN {
                    break;
                }
                std::thread::yield_now();
            }
        }
        slot.parked.store(true, SeqCst);
        // a job published before `parked` was seen would not unpark us: look once more
        if work() == 0 {
            std::thread::park();
        }
        slot.parked.store(false, SeqCst);
    }
}

/// Starts helpers until there are `want` (at most [`MAX_HELPERS`]); `false` if none can
/// be started. Allocates only when it starts one.
fn ensure(want: usize) -> bool {
    let want = want.min(MAX_HELPERS);
    if CREW.spawned.load(Acquire) >= want {
        return true;
    }
    let Ok(_guard) = CREW.spawning.lock() else {
        return false;
    };
    while CREW.spawned.load(Acquire) < want {
        let w = CREW.spawned.load(Acquire);
        let Ok(handle) = std::thread::Builder::new()
            .name(alloc::format!("tapegrad-{}", w + 1))
            .spawn(move || helper(w))
        else {
            break;
        };
        let _ = CREW.slots[w].thread.set(handle.thread().clone());
        CREW.spawned.store(w + 1, Release);
    }
    CREW.spawned.load(Acquire) > 0
}

/// Starts helpers until there are `helpers` (see `par::prepare`).
pub(super) fn prepare(helpers: usize) {
    if helpers > 0 {
        ensure(helpers);
    }
}

/// Runs `job(k)` for every `k` in `0..pieces` on the calling thread and up to `helpers`
/// crew threads, and returns when all have run; `false` (nothing run) if the crew is
/// led by another thread, this is a crew thread, or `pieces` is over [`MAX_PIECES`].
///
/// # Panics
/// If a piece panicked (after every piece has finished).
pub(super) fn run(pieces: usize, helpers: usize, job: Job<'_>) -> bool {
    if pieces > MAX_PIECES || helpers == 0 || HELPER.with(Cell::get) {
        return false;
    }
    if CREW
        .led
        .compare_exchange(false, true, Acquire, Relaxed)
        .is_err()
    {
        return false;
    }
    if !ensure(helpers) {
        CREW.led.store(false, Release);
        return false;
    }
    let number = (CREW.ticket.load(Relaxed) >> 32).wrapping_add(1) & 0xffff_ffff;
    CREW.done.store(0, Relaxed);
    CREW.panicked.store(false, Relaxed);
    CREW.job.store(&job as *const Job<'_> as *mut (), Release);
    CREW.ticket.store(pack(number, pieces, 0), SeqCst);
    let spawned = CREW.spawned.load(Acquire);
    for slot in CREW.slots[..spawned.min(pieces - 1)].iter() {
        if slot.parked.load(SeqCst) {
            if let Some(t) = slot.thread.get() {
                t.unpark();
            }
        }
    }
    work();
    let mut spins = 0u32;
    while CREW.done.load(Acquire) < pieces {
        core::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins % 64 == 0 {
            std::thread::yield_now();
        }
    }
    // closed: no piece of this job can be claimed any more
    CREW.ticket.store(pack(number, 0, 0), Release);
    let panicked = CREW.panicked.load(Relaxed);
    CREW.led.store(false, Release);
    if panicked {
        resume_unwind(alloc::boxed::Box::new("a piece of a kernel panicked"));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::run;
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::panic::{catch_unwind, AssertUnwindSafe};

    /// `run`, retried while another test leads the crew.
    fn lead(pieces: usize, helpers: usize, job: &(dyn Fn(usize) + Sync)) {
        while !run(pieces, helpers, job) {
            std::thread::yield_now();
        }
    }

    #[test]
    fn every_piece_of_every_job_runs_once() {
        for helpers in [1, 3] {
            for pieces in [2usize, 3, 7, 64] {
                for _ in 0..200 {
                    let counts: Vec<AtomicUsize> =
                        (0..pieces).map(|_| AtomicUsize::new(0)).collect();
                    lead(pieces, helpers, &|k| {
                        counts[k].fetch_add(1, Relaxed);
                    });
                    assert!(
                        counts.iter().all(|c| c.load(Relaxed) == 1),
                        "{pieces} pieces"
                    );
                }
            }
        }
    }

    #[test]
    fn a_piece_that_panics_panics_the_leader_after_all_pieces_and_the_crew_goes_on() {
        let ran = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            lead(8, 1, &|k| {
                ran.fetch_add(1, Relaxed);
                assert_ne!(k, 5, "piece 5 fails");
            })
        }));
        assert!(r.is_err());
        assert_eq!(ran.load(Relaxed), 8);
        assert!(
            !super::in_piece(),
            "the mark is gone after a panicking piece"
        );
        let after = AtomicUsize::new(0);
        lead(4, 1, &|_| {
            after.fetch_add(1, Relaxed);
        });
        assert_eq!(after.load(Relaxed), 4);
    }

    #[test]
    fn a_job_run_inside_a_piece_is_refused_and_too_many_pieces_are_refused() {
        let refused = AtomicUsize::new(0);
        lead(4, 1, &|_| {
            // on the leader the crew is led; on a helper, helpers do not lead
            if !run(2, 1, &|_| {}) {
                refused.fetch_add(1, Relaxed);
            }
        });
        assert_eq!(refused.load(Relaxed), 4);
        assert!(!run(super::MAX_PIECES + 1, 1, &|_| {}));
        assert!(!run(2, 0, &|_| {}));
    }

    #[test]
    fn kernels_inside_a_piece_run_on_its_thread_alone() {
        // `par::kernel_threads`, which the GEMM and the elementwise loops ask, is 1 in
        // every piece (leader's and helpers'); the mark is gone after the job
        let inside = AtomicUsize::new(0);
        lead(6, 1, &|_| {
            assert!(super::in_piece());
            if crate::par::kernel_threads() == 1 {
                inside.fetch_add(1, Relaxed);
            }
        });
        assert_eq!(inside.load(Relaxed), 6);
        assert!(!super::in_piece());
    }
}
