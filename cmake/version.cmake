# The version every program prints (--version) and /metrics exports
# (distrod_build_info): PROJECT_VERSION from project(), and the commit the
# tree was built from. The commit comes from `git describe` in a checkout,
# else from cmake/commit.txt, which `git archive` fills in (export-subst in
# .gitattributes) for a tarball or a package build from one; a tree that is
# neither says "unknown". Read at configure time: re-run cmake (any build
# after a commit that touches a CMake file does) for a new commit to show.
set(DISTRO_COMMIT "" CACHE STRING "commit shown by --version (empty: found by git)")
if(DISTRO_COMMIT STREQUAL "")
	set(distro_commit "unknown")
	find_package(Git QUIET)
	if(GIT_FOUND AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/.git)
		execute_process(
			COMMAND ${GIT_EXECUTABLE} describe --always --dirty --abbrev=7
			WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
			OUTPUT_VARIABLE distro_git OUTPUT_STRIP_TRAILING_WHITESPACE
			RESULT_VARIABLE distro_git_rc ERROR_QUIET)
		if(distro_git_rc EQUAL 0 AND NOT distro_git STREQUAL "")
			set(distro_commit "${distro_git}")
		endif()
	endif()
	if(distro_commit STREQUAL "unknown")
		file(READ ${CMAKE_CURRENT_SOURCE_DIR}/cmake/commit.txt distro_archived)
		string(STRIP "${distro_archived}" distro_archived)
		# Unexpanded outside `git archive`; a hash (hex digits) inside it.
		if(distro_archived MATCHES "^[0-9a-f]+$")
			set(distro_commit "${distro_archived}")
		endif()
	endif()
else()
	set(distro_commit "${DISTRO_COMMIT}")
endif()
if(NOT distro_commit MATCHES "^[0-9A-Za-z._-]+$")
	message(FATAL_ERROR "DISTRO_COMMIT '${distro_commit}': letters, digits, '.', '_', '-' only")
endif()
set(DISTRO_VERSION_COMMIT "${distro_commit}")
message(STATUS "distrod ${PROJECT_VERSION} (git ${DISTRO_VERSION_COMMIT})")
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/version.h.in
	${CMAKE_BINARY_DIR}/generated/core/version.h @ONLY)
