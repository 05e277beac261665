//! The codec from outside: golden bytes written by hand from the jute spec, malformed
//! input, and fuzzing of the frame and request decoders.

mod fuzz;
mod golden;
mod malformed;
