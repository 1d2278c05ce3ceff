//! Port-conflict analysis (pure): claims vs listeners, claims, exposures and
//! foreign redirections within one network stack.
