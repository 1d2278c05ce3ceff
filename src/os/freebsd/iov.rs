//! The name/value iovec list handed to jail_set(2) / jail_get(2), with the
//! `errmsg` buffer the kernel fills on failure, and the decoders for what
//! jail_get writes back (names, paths, `struct in_addr` arrays).
//!
//! Pure: it only builds and reads memory; `sys` makes the syscalls with it.
//! Which parameters go into a list is decided in `params`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::params::{Param, NAME_BUF_LEN, PATH_BUF_LEN};
use crate::core::names::JailName;

/// Size of the `errmsg` buffer, as libjail's JAIL_ERRMSGLEN.
pub const JAIL_ERRMSGLEN: usize = 1024;

/// The name/value iovec array for jail_set/jail_get plus the buffers it
/// points to.
///
/// why: the iovecs hold raw pointers into `params` and `errmsg`. Those are
/// heap buffers owned by this struct and never resized after construction,
/// so the pointers stay valid for as long as the struct lives, including
/// across moves of the struct itself (moving a `Vec` does not move its heap
/// data). The syscall wrapper borrows the whole struct mutably for the
/// duration of the call, so nothing can free a buffer while the kernel
/// writes into it.
pub struct JailIov {
    params: Vec<Param>,
    errmsg: Vec<u8>,
    iov: Vec<libc::iovec>,
}

const ERRMSG_NAME: &[u8] = b"errmsg\0";

impl JailIov {
    /// Builds the list for `params` and appends the `errmsg` pair.
    pub fn new(params: Vec<Param>) -> Self {
        let mut s = JailIov {
            params,
            errmsg: vec![0; JAIL_ERRMSGLEN],
            iov: Vec::new(),
        };
        let mut iov = Vec::with_capacity(2 * (s.params.len() + 1));
        for p in &mut s.params {
            iov.push(libc::iovec {
                iov_base: p.name.as_mut_ptr().cast(),
                iov_len: p.name.len(),
            });
            // why: a boolean has no value; the kernel wants NULL/0 for it.
            let base = if p.value.is_empty() {
                std::ptr::null_mut()
            } else {
                p.value.as_mut_ptr().cast()
            };
            iov.push(libc::iovec {
                iov_base: base,
                iov_len: p.value.len(),
            });
        }
        // The kernel never writes to the name; the cast to *mut is what
        // struct iovec's type demands.
        iov.push(libc::iovec {
            iov_base: ERRMSG_NAME.as_ptr() as *mut libc::c_void,
            iov_len: ERRMSG_NAME.len(),
        });
        iov.push(libc::iovec {
            iov_base: s.errmsg.as_mut_ptr().cast(),
            iov_len: s.errmsg.len(),
        });
        s.iov = iov;
        s
    }

    /// The list for reading the jail after `lastjid` (enumeration): jid,
    /// name, path and up to `ip4_slots` IPv4 addresses.
    pub fn get_next(lastjid: i32, ip4_slots: usize) -> Self {
        JailIov::new(vec![
            Param::int("lastjid", lastjid),
            Param::int("jid", 0),
            Param::buffer("name", NAME_BUF_LEN),
            Param::buffer("path", PATH_BUF_LEN),
            Param::buffer("ip4.addr", 4 * ip4_slots),
        ])
    }

    /// The list for looking a jail up by name (jid only).
    pub fn get_by_name(name: &JailName) -> Self {
        JailIov::new(vec![Param::string("name", name.as_str())])
    }

    /// Pointer and count for the syscall.
    pub fn as_mut_parts(&mut self) -> (*mut libc::iovec, u32) {
        (self.iov.as_mut_ptr(), self.iov.len() as u32)
    }

    /// The raw iovec array (for inspection in tests and logs).
    pub fn iovecs(&self) -> &[libc::iovec] {
        &self.iov
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The kernel's error message, if it wrote one.
    pub fn errmsg(&self) -> Option<String> {
        decode_errmsg(&self.errmsg)
    }

    /// A value as the kernel returned it: the buffer cut to the length the
    /// kernel wrote back into the iovec.
    pub fn value_out(&self, name: &str) -> Option<&[u8]> {
        let i = self.params.iter().position(|p| p.name() == name)?;
        let buf = &self.params[i].value;
        let n = self.iov[2 * i + 1].iov_len.min(buf.len());
        Some(&buf[..n])
    }

    /// Test helper and simulation hook: pretends the kernel wrote `bytes`
    /// into the value of `name`, as jail_get does.
    pub fn set_value_out(&mut self, name: &str, bytes: &[u8]) -> bool {
        let Some(i) = self.params.iter().position(|p| p.name() == name) else {
            return false;
        };
        let buf = &mut self.params[i].value;
        if bytes.len() > buf.len() {
            return false;
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        self.iov[2 * i + 1].iov_len = bytes.len();
        true
    }

    /// Decodes the result of a [`JailIov::get_next`] call that returned `jid`.
    pub fn decode_jail(&self, jid: i32) -> JailInfo {
        JailInfo {
            jid,
            name: self.value_out("name").map(decode_cstr).unwrap_or_default(),
            path: PathBuf::from(self.value_out("path").map(decode_cstr).unwrap_or_default()),
            ip4: self.value_out("ip4.addr").map(decode_in_addrs).unwrap_or_default(),
        }
    }
}

/// A jail as read back with jail_get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailInfo {
    pub jid: i32,
    pub name: String,
    pub path: PathBuf,
    pub ip4: Vec<Ipv4Addr>,
}

/// The text in a NUL-terminated (or full) buffer.
pub fn decode_cstr(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The kernel's `errmsg`: `None` when it left the buffer empty.
pub fn decode_errmsg(buf: &[u8]) -> Option<String> {
    let s = decode_cstr(buf);
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// An array of `struct in_addr` (network byte order); a trailing partial
/// element is ignored.
pub fn decode_in_addrs(buf: &[u8]) -> Vec<Ipv4Addr> {
    buf.chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::freebsd::params::create_params;
    use crate::os::freebsd::test_support::{dedicated, names, spec};

    #[test]
    fn iovec_points_into_owned_buffers() {
        let ps = create_params(&spec(dedicated(), &[])).unwrap();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = ps.iter().map(|p| (p.name.clone(), p.value.clone())).collect();
        let iov = JailIov::new(ps);
        // Moving the owner must not invalidate the pointers.
        let mut moved = Box::new(iov);
        let (_, n) = moved.as_mut_parts();
        assert_eq!(n as usize, 2 * (expected.len() + 1));
        let v = moved.iovecs();
        for (i, p) in moved.params().iter().enumerate() {
            assert_eq!(v[2 * i].iov_base as *const u8, p.name.as_ptr());
            assert_eq!(v[2 * i].iov_len, expected[i].0.len());
            assert_eq!(*expected[i].0.last().unwrap(), 0, "names are NUL-terminated");
            if p.value.is_empty() {
                assert!(v[2 * i + 1].iov_base.is_null());
                assert_eq!(v[2 * i + 1].iov_len, 0);
            } else {
                assert_eq!(v[2 * i + 1].iov_base as *const u8, p.value.as_ptr());
                assert_eq!(v[2 * i + 1].iov_len, expected[i].1.len());
            }
        }
        let last = v.len() - 2;
        assert_eq!(v[last].iov_base as *const u8, ERRMSG_NAME.as_ptr());
        assert_eq!(v[last + 1].iov_base as *const u8, moved.errmsg.as_ptr());
        assert_eq!(v[last + 1].iov_len, JAIL_ERRMSGLEN);
        assert_eq!(moved.errmsg(), None);
    }

    #[test]
    fn jail_get_result_decoding() {
        let mut iov = JailIov::get_next(0, 4);
        assert_eq!(names(iov.params()), ["lastjid", "jid", "name", "path", "ip4.addr"]);
        assert_eq!(iov.iovecs()[9].iov_len, 16);
        assert!(iov.set_value_out("name", b"www\0"));
        assert!(iov.set_value_out("path", b"/usr/jails/www\0"));
        assert!(iov.set_value_out("ip4.addr", &[10, 0, 0, 5, 192, 168, 1, 9]));
        assert!(!iov.set_value_out("ip4.addr", &[0; 17]), "larger than the buffer");
        let j = iov.decode_jail(3);
        assert_eq!(j.jid, 3);
        assert_eq!(j.name, "www");
        assert_eq!(j.path, PathBuf::from("/usr/jails/www"));
        assert_eq!(j.ip4, [Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(192, 168, 1, 9)]);
        // A jail without addresses: the kernel writes length 0.
        let mut iov = JailIov::get_next(3, 4);
        iov.set_value_out("ip4.addr", &[]);
        assert!(iov.decode_jail(4).ip4.is_empty());
    }

    #[test]
    fn errmsg_decoding() {
        let mut buf = vec![0u8; JAIL_ERRMSGLEN];
        assert_eq!(decode_errmsg(&buf), None);
        buf[..22].copy_from_slice(b"jail \"www\" not found\n\0");
        assert_eq!(decode_errmsg(&buf).as_deref(), Some("jail \"www\" not found"));
        // No NUL at all: the whole buffer.
        assert_eq!(decode_errmsg(b"abc").as_deref(), Some("abc"));
        assert_eq!(decode_errmsg(b"  \0junk").as_deref(), None);
        assert_eq!(decode_in_addrs(&[1, 2, 3, 4, 5]), [Ipv4Addr::new(1, 2, 3, 4)]);
    }
}
