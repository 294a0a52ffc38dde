# make install: the sample configuration to NTSD_CONFDIR/ntsd.conf (under
# DESTDIR), only where there is none yet.  Set by CMakeLists.txt:
# NTSD_SAMPLE_CONF, NTSD_CONFDIR, NTSD_DOCDIR.
set(conf "$ENV{DESTDIR}${NTSD_CONFDIR}/ntsd.conf")
if(EXISTS "${conf}")
  message(STATUS "Kept: ${conf} (the sample is in ${NTSD_DOCDIR}/examples)")
else()
  file(INSTALL "${NTSD_SAMPLE_CONF}" DESTINATION "${NTSD_CONFDIR}" # DESTDIR is added
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
