//! The bound on requests in flight, with a lane that goes first: the next page of a listing
//! already under way takes a freed slot before the first page of a new one. A slice of many
//! pages is fetched one page after another; behind a queue of new slices' first requests it
//! would get a slot every other round and outlast the rest of the pull.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Which queue a request waits in when every slot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The next page of a listing that has started.
    Continuation,
    /// Anything else, first come first served.
    New,
}

pub struct Gate {
    state: Mutex<State>,
}

struct State {
    free: usize,
    continuations: VecDeque<oneshot::Sender<()>>,
    new: VecDeque<oneshot::Sender<()>>,
}

/// A slot, given back when dropped.
pub struct Slot<'a> {
    gate: &'a Gate,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.gate.release();
    }
}

/// A waiter's claim: if it is dropped (its request cancelled) after a slot was handed to it,
/// the slot goes back.
struct Waiting<'a> {
    gate: &'a Gate,
    handed: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(mut handed) = self.handed.take() {
            handed.close();
            if handed.try_recv().is_ok() {
                self.gate.release();
            }
        }
    }
}

impl Gate {
    pub fn new(slots: usize) -> Gate {
        Gate {
            state: Mutex::new(State {
                free: slots.max(1),
                continuations: VecDeque::new(),
                new: VecDeque::new(),
            }),
        }
    }

    /// A slot: at once when one is free and no one of the lane's rank waits; else in turn,
    /// continuations before new requests.
    pub async fn acquire(&self, lane: Lane) -> Slot<'_> {
        let receiver = {
            let mut state = self.state.lock().expect("no panics hold the lock");
            let ahead = match lane {
                Lane::Continuation => !state.continuations.is_empty(),
                Lane::New => !state.continuations.is_empty() || !state.new.is_empty(),
            };
            if state.free > 0 && !ahead {
                state.free -= 1;
                return Slot { gate: self };
            }
            let (sender, receiver) = oneshot::channel();
            match lane {
                Lane::Continuation => state.continuations.push_back(sender),
                Lane::New => state.new.push_back(sender),
            }
            receiver
        };
        let mut waiting = Waiting {
            gate: self,
            handed: Some(receiver),
        };
        let handed = waiting.handed.as_mut().expect("set above");
        // The sender is dropped only after sending (release) or never: a slot was handed over.
        let _ = handed.await;
        waiting.handed = None;
        Slot { gate: self }
    }

    /// Hands a slot to the first waiter still waiting, continuations first, else frees it.
    fn release(&self) {
        let mut state = self.state.lock().expect("no panics hold the lock");
        while let Some(next) = state
            .continuations
            .pop_front()
            .or_else(|| state.new.pop_front())
        {
            if next.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_a_waiting_continuation_before_earlier_new_requests() {
        let gate = Arc::new(Gate::new(1));
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = gate.acquire(Lane::New).await;
        let mut tasks = Vec::new();
        for (name, lane) in [
            ("new-1", Lane::New),
            ("new-2", Lane::New),
            ("next-page", Lane::Continuation),
        ] {
            let (gate, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = gate.acquire(lane).await;
                order.lock().unwrap().push(name);
                settle().await;
            }));
            settle().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["next-page", "new-1", "new-2"]);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_neither_keeps_nor_loses_a_slot() {
        let gate = Gate::new(2);
        let a = gate.acquire(Lane::New).await;
        let b = gate.acquire(Lane::New).await;
        // Waits, then is cancelled before and after a slot is handed to it.
        let early = tokio::time::timeout(Duration::from_millis(10), gate.acquire(Lane::New)).await;
        assert!(early.is_err());
        drop(a);
        let c = gate.acquire(Lane::Continuation).await;
        drop(b);
        drop(c);
        // Both slots are free again: two acquire at once.
        let both = tokio::time::timeout(Duration::from_millis(50), async {
            let x = gate.acquire(Lane::New).await;
            let y = gate.acquire(Lane::New).await;
            (x, y)
        })
        .await;
        assert!(both.is_ok());
    }
}
