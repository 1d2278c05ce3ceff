//! Address pools and allocation of the lowest free address.
