//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// Records its number in a log when dropped (not `Send`: for scopes).
pub struct Counted(pub Rc<RefCell<Vec<u32>>>, pub u32);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.borrow_mut().push(self.1);
    }
}

/// As `Counted`, but `Send` (for the arena's own values).
#[derive(Clone)]
pub struct SendCounted(pub Arc<Mutex<Vec<u32>>>, pub u32);

impl Drop for SendCounted {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(self.1);
    }
}
