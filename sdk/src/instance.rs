//! The one plugin value of a component instance, opened on first use.
//!
//! A component instance is single-threaded, so a thread-local slot is the
//! whole state. When `open` fails the error is returned and the next call
//! tries again, so a backend that was down at start recovers by itself.

use std::any::Any;
use std::cell::RefCell;

use crate::Error;

thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs `call` on the plugin value, opening it with `open` first if needed.
pub(crate) fn with<T: 'static, R>(
    open: fn() -> Result<T, Error>,
    call: impl FnOnce(&T) -> Result<R, Error>,
) -> Result<R, Error> {
    INSTANCE.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.as_ref().is_none_or(|value| !value.is::<T>()) {
            *slot = Some(Box::new(open()?));
        }
        match slot.as_ref().and_then(|value| value.downcast_ref::<T>()) {
            Some(value) => call(value),
            None => Err(Error::Internal("plugin instance is missing".to_owned())),
        }
    })
}
