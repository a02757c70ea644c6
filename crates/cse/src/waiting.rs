//! A request that waits a long time for something to happen (a long poll on a polling
//! channel) gives its binding's place for requests in progress back while it waits.
//!
//! A binding bounds the requests it handles at once (the HTTP binding's `max_requests`), so
//! that bodies and work in progress stay bounded. A long poll holds no body and does no
//! work while it waits; if it kept its place, a few thousand request-unreachable AEs
//! polling would fill every place and starve every other client. So the binding runs each
//! request inside [`holding`] with its place, and the CSE calls [`release`] when a request
//! starts waiting: the place is freed at once, and the request goes on to its answer
//! without one (what it then does is small: one answer from memory or one store read).

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;

/// Whatever stands for the place a binding gave a request (a semaphore permit).
type Place = Box<dyn Any + Send>;

tokio::task_local! {
    static PLACE: RefCell<Option<Place>>;
}

/// Runs `request` holding `place` until the request ends or calls [`release`]. Bindings
/// call it around [`crate::Cse::serve`].
pub async fn holding<F: Future>(place: impl Any + Send, request: F) -> F::Output {
    PLACE
        .scope(RefCell::new(Some(Box::new(place))), request)
        .await
}

/// Gives back the place of the request running on this task (no effect outside
/// [`holding`], or when it is already given back).
pub(crate) fn release() {
    let place = PLACE
        .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take()))
        .ok()
        .flatten();
    drop(place);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    #[tokio::test]
    async fn a_released_place_is_free_while_the_request_goes_on() {
        let places = Arc::new(Semaphore::new(1));
        let permit = places.clone().acquire_owned().await.expect("permit");
        let places_inside = places.clone();
        let seen = holding(permit, async move {
            let before = places_inside.available_permits();
            release();
            release();
            (before, places_inside.available_permits())
        })
        .await;
        assert_eq!(seen, (0, 1));
        release();
        assert_eq!(places.available_permits(), 1);
    }

    #[tokio::test]
    async fn a_place_not_released_is_held_until_the_end() {
        let places = Arc::new(Semaphore::new(1));
        let permit = places.clone().acquire_owned().await.expect("permit");
        let inside = places.clone();
        let during = holding(permit, async move { inside.available_permits() }).await;
        assert_eq!((during, places.available_permits()), (0, 1));
    }
}
