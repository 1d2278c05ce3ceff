//! Command-line interface: clap definitions, thin handlers, output.
