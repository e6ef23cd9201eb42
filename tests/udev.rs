//! The shipped udev rules.
