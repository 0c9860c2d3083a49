//! The one-line export macros.

/// Exports a [`ConnectorPlugin`](crate::ConnectorPlugin) from a `cdylib` under the symbol
/// `MEMLENS_CONNECTOR_<NAME>`: `export_connector!(FILE = FileConnector);`. The upper-case
/// name must be the plugin's `NAME` in upper case (checked at compile time).
#[macro_export]
macro_rules! export_connector {
    ($sym:ident = $ty:ty) => {
        const _: () = {
            #[used]
            #[export_name = concat!("MEMLENS_CONNECTOR_", stringify!($sym))]
            static DESCRIPTOR: $crate::abi::ConnectorDescriptor =
                $crate::abi::export::connector_descriptor::<$ty>(stringify!($sym));
        };
    };
}

/// Exports an [`OsPlugin`](crate::OsPlugin) from a `cdylib` under the symbol
/// `MEMLENS_OS_<NAME>`: `export_os!(LINUX = LinuxPlugin);`.
#[macro_export]
macro_rules! export_os {
    ($sym:ident = $ty:ty) => {
        const _: () = {
            #[used]
            #[export_name = concat!("MEMLENS_OS_", stringify!($sym))]
            static DESCRIPTOR: $crate::abi::OsDescriptor =
                $crate::abi::export::os_descriptor::<$ty>(stringify!($sym));
        };
    };
}
