; The Windows installer of Cloudkeep: the console (cloudkeep-console.exe) and the command line
; with the agent (cloudkeep.exe), a Start menu entry, an entry in "Installed apps" with its
; uninstaller. Built by scripts/package with Debian's makensis:
;   makensis -DVERSION=0.1.0 -DSTAGE=<folder with the files> -DOUTFILE=<setup.exe> cloudkeep.nsi
; Silent install: setup.exe /S [/D=C:\Folder] ; silent uninstall: uninstall.exe /S
; A 64-bit installer for a 64-bit program (the stub runs where the program runs).
Target amd64-unicode
ManifestDPIAware true
SetCompressor /SOLID lzma

!define PRODUCT "Cloudkeep"
!define PUBLISHER "Cloudkeep"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Cloudkeep"
; The Evergreen WebView2 runtime registers itself here (per machine).
!define WEBVIEW2_KEY "SOFTWARE\WOW6432Node\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}"

Name "${PRODUCT} ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${PRODUCT}"
InstallDirRegKey HKLM "${UNINSTALL_KEY}" "InstallLocation"
RequestExecutionLevel admin
Icon "${STAGE}\icon.ico"
UninstallIcon "${STAGE}\icon.ico"

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${PRODUCT}"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "FileDescription" "${PRODUCT} installer"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "Apache-2.0"

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

Section "Cloudkeep"
  SetShellVarContext all
  SetOutPath "$INSTDIR"
  File "${STAGE}\cloudkeep-console.exe"
  ; The WebView2 loader the console links (a MinGW build loads it from beside the program).
  File "${STAGE}\WebView2Loader.dll"
  File "${STAGE}\cloudkeep.exe"
  File "${STAGE}\icon.ico"
  File "${STAGE}\README.txt"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateDirectory "$SMPROGRAMS\${PRODUCT}"
  CreateShortcut "$SMPROGRAMS\${PRODUCT}\Cloudkeep Console.lnk" "$INSTDIR\cloudkeep-console.exe" "" "$INSTDIR\icon.ico"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\icon.ico"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoRepair" 1
  ; The console draws with the WebView2 runtime, part of Windows 10 and 11.
  ReadRegStr $0 HKLM "${WEBVIEW2_KEY}" "pv"
  StrCmp $0 "" 0 webview2_found
    DetailPrint "The Microsoft Edge WebView2 Runtime is missing: the console needs it."
    MessageBox MB_OK|MB_ICONINFORMATION "Cloudkeep Console needs the Microsoft Edge WebView2 Runtime, which this computer does not have. Install it from https://go.microsoft.com/fwlink/p/?LinkId=2124703 and start the console again. The command line (cloudkeep.exe) works without it." /SD IDOK
  webview2_found:
SectionEnd

Section "Uninstall"
  SetShellVarContext all
  ; An agent installed as a service is stopped and removed with the program (its data folder
  ; and restore points stay).
  ExecWait '"$INSTDIR\cloudkeep.exe" agent service uninstall'
  Delete "$INSTDIR\cloudkeep-console.exe"
  Delete "$INSTDIR\WebView2Loader.dll"
  Delete "$INSTDIR\cloudkeep.exe"
  Delete "$INSTDIR\icon.ico"
  Delete "$INSTDIR\README.txt"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\${PRODUCT}\Cloudkeep Console.lnk"
  RMDir "$SMPROGRAMS\${PRODUCT}"
  DeleteRegKey HKLM "${UNINSTALL_KEY}"
SectionEnd
