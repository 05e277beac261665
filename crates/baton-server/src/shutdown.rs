//! Shutdown: one trigger, many listeners.
//!
//! The server stops when its caller's shutdown future resolves (SIGINT/SIGTERM) or
//! when a task it cannot run without fails (the driver after a storage error). Both
//! pull the same trigger; every task that must stop listens for it.

use tokio::sync::watch;

/// The trigger. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    sender: watch::Sender<bool>,
}

/// Resolves once the trigger was pulled (or every trigger is gone).
#[derive(Debug, Clone)]
pub(crate) struct ShutdownListener {
    receiver: watch::Receiver<bool>,
}

impl Shutdown {
    pub(crate) fn new() -> Shutdown {
        Shutdown { sender: watch::Sender::new(false) }
    }

    pub(crate) fn trigger(&self) {
        self.sender.send_replace(true);
    }

    pub(crate) fn listener(&self) -> ShutdownListener {
        ShutdownListener { receiver: self.sender.subscribe() }
    }
}

impl ShutdownListener {
    pub(crate) async fn recv(&mut self) {
        // An error means every trigger is gone: nobody can stop us later, so stop now.
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_listener_hears_the_trigger() {
        let shutdown = Shutdown::new();
        let (mut a, mut b) = (shutdown.listener(), shutdown.listener());
        shutdown.trigger();
        a.recv().await;
        b.recv().await;
        let mut late = shutdown.listener();
        late.recv().await;
    }
}
