//! helper fills this in
