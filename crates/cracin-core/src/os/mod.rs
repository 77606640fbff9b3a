//! Host plumbing that keeps what cracin writes private and its paths unguessable: private
//! permissions whatever the umask (`perms`), and temporary directories with mkdtemp semantics
//! (`tempdir`). A checkpoint is a memory dump of the application, as sensitive as a private key.

pub mod guard;
pub mod lock;
pub mod perms;
pub mod tempdir;
