# Read by cpack once per generator (CPACK_PROJECT_CONFIG_FILE), before it builds.
#
# Debian: CPackDeb puts CPACK_PACKAGE_DESCRIPTION_SUMMARY in front of every
# package's description, but the two packages need their own synopsis lines, which
# lead CPACK_DEBIAN_<COMPONENT>_DESCRIPTION. Resetting the summary to CPack's default
# tells CPackDeb to leave those descriptions as written.
if(CPACK_GENERATOR STREQUAL "DEB")
  set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${CPACK_DEFAULT_PACKAGE_DESCRIPTION_SUMMARY}")
endif()
