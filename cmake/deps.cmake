# Every dependency comes from a Debian 12 package (tools/deps installs them).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(URING REQUIRED IMPORTED_TARGET liburing)
pkg_check_modules(CK REQUIRED IMPORTED_TARGET ck)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(CRYPTO REQUIRED IMPORTED_TARGET libcrypto) # OpenSSL: HMAC for peer auth
# sd_notify for distrod under systemd (src/server/notify.c), libsystemd-dev.
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
pkg_check_modules(SSL REQUIRED IMPORTED_TARGET libssl) # OpenSSL: TLS 1.3 on peer links (libssl-dev)
find_library(ROARING_LIB roaring REQUIRED)
find_path(ROARING_INCLUDE roaring/roaring.h REQUIRED)
find_library(MIMALLOC_LIB mimalloc REQUIRED)
find_path(MIMALLOC_INCLUDE mimalloc.h REQUIRED)

add_library(distro_deps INTERFACE)
target_include_directories(distro_deps INTERFACE ${ROARING_INCLUDE} ${MIMALLOC_INCLUDE})
target_link_libraries(distro_deps INTERFACE
	PkgConfig::URING PkgConfig::CK PkgConfig::XXHASH PkgConfig::SSL PkgConfig::CRYPTO
	${ROARING_LIB} ${MIMALLOC_LIB} Threads::Threads m)
