//! Owner-only files and folders on Windows (paths as given: callers hand over the verbatim
//! form for long paths): the equivalent of Unix modes 0600 and 0700 is a
//! *protected* access list (no entries inherited from the parent) with one entry, full access
//! for the user Cloudkeep runs as. Folders pass that entry on to everything created in them,
//! so a file written into a private folder is private from its first byte.
//!
//! The access lists are written and read in SDDL, Windows' own text form
//! (`D:P(A;OICI;FA;;;S-1-5-21-…)`), which keeps the unsafe surface to a handful of calls of
//! the security API, each freeing what it was given. Reading an access list back
//! ([`others_allowed`]) is plain text handling and is tested on every platform.

/// Whether an SDDL access list lets anyone but `user_sid` in: an allow entry for another
/// account (inherited or not). Deny entries and audit entries let nobody in. The
/// LocalSystem account (`SY`) is the operating system itself, which reads every file anyway
/// (and which Wine lists on every file): an entry for it exposes nothing.
pub fn others_allowed(sddl: &str, user_sid: &str) -> Option<String> {
    let dacl = match sddl.find("D:") {
        Some(at) => &sddl[at + 2..],
        // No access list at all: Windows then lets everyone in.
        None => return Some("no access list (everyone may open it)".into()),
    };
    // The access list ends where a system access list ("S:") would start.
    let dacl = dacl.split("S:").next().unwrap_or(dacl);
    if dacl.starts_with("NO_ACCESS_CONTROL") {
        return Some("a null access list (everyone may open it)".into());
    }
    let same = |sid: &str| sid == user_sid || sid == "SY" || sid == "S-1-5-18";
    dacl.split('(')
        .skip(1)
        .filter_map(|ace| ace.split(')').next())
        .find_map(|ace| {
            let fields: Vec<&str> = ace.split(';').collect();
            let kind = fields.first().copied().unwrap_or_default();
            let sid = fields.last().copied().unwrap_or_default();
            // "A" allows; "OA" allows on an object type; "XA"/"ZA" allow on a condition.
            let allows = matches!(kind, "A" | "OA" | "XA" | "ZA");
            (allows && !same(sid)).then(|| format!("its access list lets {} in", who(sid)))
        })
}

/// Whether an SDDL access list lets anyone but `user_sid` and the system's own accounts
/// (LocalSystem, the Administrators group, TrustedInstaller) change the file or folder: write,
/// append, add files, delete, change its attributes, access list or owner. Entries that only
/// pass on to what is created inside (`IO`) do not count; deny entries let nobody in. For a
/// program a service runs as LocalSystem: anyone who may change it may run code as the system.
pub fn others_may_change(sddl: &str, user_sid: &str) -> Option<String> {
    let Some(at) = sddl.find("D:") else {
        return Some("no access list (everyone may change it)".into());
    };
    let dacl = &sddl[at + 2..];
    let dacl = dacl.split("S:").next().unwrap_or(dacl);
    if dacl.starts_with("NO_ACCESS_CONTROL") {
        return Some("a null access list (everyone may change it)".into());
    }
    const TRUSTED: [&str; 5] = [
        "SY",
        "S-1-5-18",
        "BA",
        "S-1-5-32-544",
        // TrustedInstaller, which owns Windows' own programs.
        "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464",
    ];
    dacl.split('(')
        .skip(1)
        .filter_map(|ace| ace.split(')').next())
        .find_map(|ace| {
            let fields: Vec<&str> = ace.split(';').collect();
            let [kind, flags, rights, .., sid] = fields.as_slice() else {
                return None;
            };
            let allows = matches!(*kind, "A" | "OA" | "XA" | "ZA");
            let inherit_only = flags.as_bytes().chunks(2).any(|f| f == b"IO");
            let trusted = *sid == user_sid || TRUSTED.contains(sid);
            (allows && !inherit_only && !trusted && rights_change(rights))
                .then(|| format!("its access list lets {} change it", who(sid)))
        })
}

/// Whether an SDDL rights field (`FA`, `0x1200a9`, `CCDCLC…`) holds a right that changes the
/// object.
fn rights_change(rights: &str) -> bool {
    // Write data / add file, append / add folder, write extended attributes, delete child,
    // write attributes, delete, write the access list, write the owner, generic all and write.
    const CHANGING: u32 = 0x2 | 0x4 | 0x10 | 0x40 | 0x100 | 0x1_0000 | 0x4_0000 | 0x8_0000;
    const GENERIC: u32 = 0x1000_0000 | 0x4000_0000;
    if let Some(hex) = rights
        .strip_prefix("0x")
        .or_else(|| rights.strip_prefix("0X"))
    {
        // Unreadable is changing: never trust what cannot be read.
        return u32::from_str_radix(hex, 16).map_or(true, |mask| mask & (CHANGING | GENERIC) != 0);
    }
    rights.as_bytes().chunks(2).any(|code| {
        matches!(
            code,
            b"GA"
                | b"GW"
                | b"FA"
                | b"FW"
                | b"KA"
                | b"KW"
                | b"DC"
                | b"LC"
                | b"RP"
                | b"DT"
                | b"CR"
                | b"SD"
                | b"WD"
                | b"WO"
        )
    })
}

/// A reader's name for a SID or SDDL alias.
fn who(sid: &str) -> String {
    match sid {
        "WD" => "Everyone".into(),
        "AU" => "Authenticated Users".into(),
        "BU" => "the Users group".into(),
        "BA" => "the Administrators group".into(),
        "SY" => "the LocalSystem account".into(),
        "CO" | "OW" => "the owner, whoever that becomes".into(),
        other => format!("the account {other}"),
    }
}

#[cfg(windows)]
pub use ffi::{access_list, current_user_sid, set_access_list, set_owner_only};

#[cfg(windows)]
#[allow(unsafe_code)]
mod ffi {
    //! The calls of the Windows security API. Every pointer the API returns is freed with
    //! `LocalFree` before the function returns, on every path.
    use std::io;
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LocalFree};
    use windows_sys::Win32::Security::Authorization::{
        ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertSidToStringSidW,
        ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW,
        SDDL_REVISION_1, SE_FILE_OBJECT, SetNamedSecurityInfoW,
    };
    use windows_sys::Win32::Security::{
        ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl, GetSecurityDescriptorOwner,
        GetTokenInformation, OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION,
        PSECURITY_DESCRIPTOR, PSID, TOKEN_QUERY, TOKEN_USER, TokenUser,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    fn wide(text: &std::ffi::OsStr) -> Vec<u16> {
        text.encode_wide().chain(std::iter::once(0)).collect()
    }

    /// A string the API allocated, read and freed.
    ///
    /// SAFETY: `ptr` is null or a NUL-terminated UTF-16 string from `LocalAlloc`.
    unsafe fn take_string(ptr: *mut u16) -> String {
        if ptr.is_null() {
            return String::new();
        }
        // SAFETY: NUL-terminated, as the caller promises.
        let len = (0..).take_while(|&i| unsafe { *ptr.add(i) } != 0).count();
        // SAFETY: `len` units were just read.
        let text = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(ptr, len) });
        // SAFETY: allocated by the API with LocalAlloc.
        unsafe { LocalFree(ptr.cast()) };
        text
    }

    /// The SID of the user this process runs as, in its text form (`S-1-5-21-…`).
    pub fn current_user_sid() -> io::Result<String> {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: the pseudo handle of this process needs no closing; `token` is written.
        if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut needed = 0u32;
        // SAFETY: a size query with no buffer.
        unsafe { GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut needed) };
        // u64 storage keeps the TOKEN_USER aligned.
        let mut buffer = vec![0u64; (needed as usize).div_ceil(8).max(1)];
        // SAFETY: the buffer holds `needed` bytes.
        let ok = unsafe {
            GetTokenInformation(
                token,
                TokenUser,
                buffer.as_mut_ptr().cast(),
                needed,
                &mut needed,
            )
        };
        let error = io::Error::last_os_error();
        // SAFETY: opened above.
        unsafe { CloseHandle(token) };
        if ok == 0 {
            return Err(error);
        }
        // SAFETY: filled by GetTokenInformation with a TOKEN_USER.
        let user = unsafe { &*buffer.as_ptr().cast::<TOKEN_USER>() };
        let mut text: *mut u16 = std::ptr::null_mut();
        // SAFETY: the SID points into `buffer`, alive here.
        if unsafe { ConvertSidToStringSidW(user.User.Sid, &mut text) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: allocated by ConvertSidToStringSidW.
        Ok(unsafe { take_string(text) })
    }

    /// Replaces the access list of `path` with one entry, full access for this user, and
    /// stops inheritance from its parent. A folder passes the entry on to what is created
    /// in it.
    pub fn set_owner_only(path: &Path, folder: bool) -> io::Result<()> {
        let sid = current_user_sid()?;
        let inherit = if folder { "OICI" } else { "" };
        set_access_list(path, &format!("O:{sid}D:P(A;{inherit};FA;;;{sid})"))
    }

    /// Replaces the access list of `path` with the one `sddl` describes (`D:P(…)` also stops
    /// inheritance from the parent).
    pub fn set_access_list(path: &Path, sddl: &str) -> io::Result<()> {
        let sddl = wide(std::ffi::OsStr::new(sddl));
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated; `sd` is written and freed below.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        let (mut present, mut defaulted) = (0, 0);
        let mut dacl: *mut ACL = std::ptr::null_mut();
        let mut owner: PSID = std::ptr::null_mut();
        // SAFETY: `sd` is the descriptor just made; `dacl` and `owner` point into it.
        let ok = unsafe {
            GetSecurityDescriptorDacl(sd, &mut present, &mut dacl, &mut defaulted) != 0
                && GetSecurityDescriptorOwner(sd, &mut owner, &mut defaulted) != 0
        };
        let result = if !ok || present == 0 {
            Err(io::Error::last_os_error())
        } else {
            // The owner is set with the list when the text names one ("O:…"): Wine maps an
            // entry to the file's Unix owner bits only for the owner it is told.
            let mut what = DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION;
            if !owner.is_null() {
                what |= OWNER_SECURITY_INFORMATION;
            }
            let name = wide(path.as_os_str());
            // SAFETY: `name` is NUL-terminated; `dacl` and `owner` live in `sd`, freed after
            // the call.
            let status = unsafe {
                SetNamedSecurityInfoW(
                    name.as_ptr(),
                    SE_FILE_OBJECT,
                    what,
                    owner,
                    std::ptr::null_mut(),
                    dacl,
                    std::ptr::null(),
                )
            };
            if status == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(status as i32))
            }
        };
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(sd) };
        result
    }

    /// The access list of `path` in SDDL.
    pub fn access_list(path: &Path) -> io::Result<String> {
        let name = wide(path.as_os_str());
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; `sd` is written and freed below; the other
        // out-pointers are optional and not asked for.
        let status = unsafe {
            GetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut sd,
            )
        };
        if status != 0 {
            return Err(io::Error::from_raw_os_error(status as i32));
        }
        let mut text: *mut u16 = std::ptr::null_mut();
        // SAFETY: `sd` came from GetNamedSecurityInfoW; `text` is freed by take_string.
        let ok = unsafe {
            ConvertSecurityDescriptorToStringSecurityDescriptorW(
                sd,
                SDDL_REVISION_1,
                DACL_SECURITY_INFORMATION,
                &mut text,
                std::ptr::null_mut(),
            )
        };
        let error = io::Error::last_os_error();
        // SAFETY: allocated by GetNamedSecurityInfoW.
        unsafe { LocalFree(sd) };
        if ok == 0 {
            return Err(error);
        }
        // SAFETY: allocated by the conversion.
        Ok(unsafe { take_string(text) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "S-1-5-21-1-2-3-1001";

    #[test]
    fn an_access_list_for_the_user_alone_is_private() {
        assert_eq!(others_allowed(&format!("D:P(A;OICI;FA;;;{ME})"), ME), None);
        // Inherited from a private folder, with a deny entry for good measure.
        let inherited = format!("D:(D;;FA;;;WD)(A;ID;FA;;;{ME})");
        assert_eq!(others_allowed(&inherited, ME), None);
        assert_eq!(others_allowed("D:P(A;;FA;;;SY)", "S-1-5-18"), None);
        // As Wine reports an owner-only folder (it keeps access lists as Unix modes).
        let wine = format!("D:(A;OICI;FA;;;SY)(A;OICI;FA;;;{ME})");
        assert_eq!(others_allowed(&wine, ME), None);
    }

    #[test]
    fn anyone_else_let_in_is_named() {
        let shared = format!("D:(A;ID;FA;;;{ME})(A;ID;0x1200a9;;;BU)");
        let why = others_allowed(&shared, ME).unwrap_or_default();
        assert!(why.contains("Users group"), "{why}");
        let other = others_allowed("D:P(A;;FA;;;S-1-5-21-9-9-9-500)", ME).unwrap_or_default();
        assert!(other.contains("S-1-5-21-9-9-9-500"), "{other}");
        assert!(others_allowed("O:BAG:SY", ME).is_some(), "no access list");
        assert!(others_allowed("D:NO_ACCESS_CONTROL", ME).is_some());
        // A system access list after the DACL is not read as entries.
        assert_eq!(
            others_allowed(&format!("D:P(A;;FA;;;{ME})S:(AU;FA;FA;;;WD)"), ME),
            None
        );
    }

    /// As Windows lists C:\Program Files\Cloudkeep: users read and run, only the system,
    /// administrators and TrustedInstaller change.
    const PROGRAM_FILES: &str = "O:S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464\
        D:P(A;;FA;;;S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464)\
        (A;CIIO;GA;;;S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464)\
        (A;;0x1301bf;;;SY)(A;OICIIO;GA;;;SY)(A;;0x1301bf;;;BA)(A;OICIIO;GA;;;BA)\
        (A;;0x1200a9;;;BU)(A;OICIIO;GXGR;;;BU)(A;OICIIO;GA;;;CO)\
        (A;;0x1200a9;;;AC)(A;OICIIO;GXGR;;;AC)";

    #[test]
    fn a_program_only_the_system_and_administrators_change_is_safe_to_run_as_a_service() {
        assert_eq!(others_may_change(PROGRAM_FILES, ME), None);
        assert_eq!(
            others_may_change(&format!("D:P(A;;FA;;;{ME})(A;;FR;;;WD)"), ME),
            None
        );
        // Wine's list of a file with mode 0755.
        assert_eq!(
            others_may_change(
                &format!("D:(A;;FA;;;SY)(A;;FA;;;{ME})(A;;0x1200a9;;;WD)"),
                ME
            ),
            None
        );
    }

    #[test]
    fn a_program_others_may_change_is_named() {
        for (sddl, who) in [
            (
                format!("D:(A;;FA;;;{ME})(A;ID;0x1301bf;;;AU)"),
                "Authenticated Users",
            ),
            (format!("D:(A;;FA;;;{ME})(A;;0x2;;;BU)"), "Users group"),
            (format!("D:(A;;FA;;;{ME})(A;;FRFW;;;WD)"), "Everyone"),
            (format!("D:(A;;FA;;;{ME})(A;;CCDCLC;;;BU)"), "Users group"),
            (
                format!("D:(A;;FA;;;{ME})(A;;WD;;;S-1-5-21-9-9-9-1002)"),
                "S-1-5-21-9-9-9-1002",
            ),
            (format!("D:(A;;FA;;;{ME})(A;;0xzz;;;BU)"), "Users group"),
            ("O:BA".to_owned(), "no access list"),
        ] {
            let why = others_may_change(&sddl, ME).unwrap_or_default();
            assert!(why.contains(who), "{sddl}: {why}");
        }
    }
}
