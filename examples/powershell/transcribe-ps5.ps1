<#
.SYNOPSIS
  Transcribe an audio file with whisper_api from Windows PowerShell 5.1 (no -Form there: the
  multipart body is built with .NET's HttpClient, which ships with Windows).
.EXAMPLE
  .\transcribe-ps5.ps1 -File .\meeting.mp3
  .\transcribe-ps5.ps1 -File .\meeting.mp3 -Format srt -OutFile .\meeting.srt
  .\transcribe-ps5.ps1 -File .\interview.m4a -BaseUrl https://intranet.example.com/whisper/v1 -Language de
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
Add-Type -AssemblyName System.Net.Http
# Windows PowerShell 5 defaults to old TLS versions; corporate HTTPS needs 1.2.
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12

$path = (Resolve-Path -LiteralPath $File).ProviderPath
$endpoint = if ($Translate) { "translations" } else { "transcriptions" }

$client = New-Object System.Net.Http.HttpClient
$client.Timeout = [TimeSpan]::FromHours(2)   # long recordings may take minutes
$client.DefaultRequestHeaders.Authorization = New-Object System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", $ApiKey)
$stream = [System.IO.File]::OpenRead($path)
try {
    $content = New-Object System.Net.Http.MultipartFormDataContent
    $filePart = New-Object System.Net.Http.StreamContent($stream)
    $filePart.Headers.ContentType = [System.Net.Http.Headers.MediaTypeHeaderValue]::Parse("application/octet-stream")
    $content.Add($filePart, "file", [System.IO.Path]::GetFileName($path))
    $content.Add((New-Object System.Net.Http.StringContent($Model)), "model")
    $content.Add((New-Object System.Net.Http.StringContent($Format)), "response_format")
    if ($Language -and -not $Translate) { $content.Add((New-Object System.Net.Http.StringContent($Language)), "language") }

    $response = $client.PostAsync("$BaseUrl/audio/$endpoint", $content).GetAwaiter().GetResult()
    # Read the body as UTF-8 bytes: PowerShell 5 would otherwise guess a Windows code page.
    $bytes = $response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult()
    $text = [System.Text.Encoding]::UTF8.GetString($bytes)
    if (-not $response.IsSuccessStatusCode) {
        try { $message = ($text | ConvertFrom-Json).error.message } catch { $message = $text }
        Write-Error "whisper_api: $([int]$response.StatusCode) $message"
        exit 1
    }
    if ($Format -eq "json") { $text = ($text | ConvertFrom-Json).text }
    $requestId = ($response.Headers.GetValues("x-request-id") | Select-Object -First 1)
} finally {
    $stream.Dispose()
    $client.Dispose()
}

if ($OutFile) {
    [System.IO.File]::WriteAllText((Join-Path (Get-Location) $OutFile), $text, (New-Object System.Text.UTF8Encoding($false)))
    Write-Host "written $OutFile (request id $requestId)"
} else {
    $text
}
