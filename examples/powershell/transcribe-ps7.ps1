<#
.SYNOPSIS
  Transcribe an audio file with whisper_api from PowerShell 7 (pwsh).
.EXAMPLE
  ./transcribe-ps7.ps1 -File .\meeting.mp3
  ./transcribe-ps7.ps1 -File .\meeting.mp3 -Format srt -OutFile .\meeting.srt
  ./transcribe-ps7.ps1 -File .\interview.m4a -BaseUrl https://intranet.example.com/whisper/v1 -Language de
#>
param(
    [Parameter(Mandatory = $true)] [string] $File,
    [string] $BaseUrl = $(if ($env:WHISPER_API_URL) { $env:WHISPER_API_URL } else { "http://localhost:8000/v1" }),
    [string] $ApiKey = $(if ($env:WHISPER_API_KEY) { $env:WHISPER_API_KEY } else { "local" }),
    [string] $Model = "whisper-1",
    [string] $Language = "",
    [ValidateSet("json", "text", "srt", "vtt", "verbose_json")] [string] $Format = "json",
    [switch] $Translate,
    [string] $OutFile = ""
)
$ErrorActionPreference = "Stop"

$endpoint = if ($Translate) { "translations" } else { "transcriptions" }
$form = @{
    file            = Get-Item -LiteralPath $File   # -Form sends a FileInfo as a file part
    model           = $Model
    response_format = $Format
}
if ($Language -and -not $Translate) { $form.language = $Language }

try {
    # -TimeoutSec 0 = no client timeout: long recordings may take minutes.
    $response = Invoke-WebRequest -Method Post -Uri "$BaseUrl/audio/$endpoint" -Form $form `
        -Headers @{ Authorization = "Bearer $ApiKey" } -TimeoutSec 0
} catch {
    # The server answers errors as {"error": {"message": ...}}, like OpenAI.
    $body = $_.ErrorDetails.Message
    if ($body) { $message = ($body | ConvertFrom-Json).error.message } else { $message = $_.Exception.Message }
    Write-Error "whisper_api: $message"
    exit 1
}

# Decode as UTF-8 whatever the platform's default, so accents and non-Latin scripts survive.
$text = [System.Text.Encoding]::UTF8.GetString($response.RawContentStream.ToArray())
if ($Format -eq "json") { $text = ($text | ConvertFrom-Json).text }

if ($OutFile) {
    [System.IO.File]::WriteAllText((Join-Path (Get-Location) $OutFile), $text, [System.Text.UTF8Encoding]::new($false))
    Write-Host "written $OutFile (request id $($response.Headers['x-request-id']))"
} else {
    $text
}
