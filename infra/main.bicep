// The warehouse-export function app and what it needs: its own storage account (AzureWebJobsStorage:
// queues, tables, source log; plus the deployment package container on Flex Consumption), a Linux
// plan (Flex Consumption by default, or Consumption), Application Insights on a Log Analytics
// workspace, and the app settings read by src/lib/config.ts.
//
//   az deployment group create -g <rg> -f infra/main.bicep \
//     -p appName=<globally unique name> sasEncryptionKey=$(openssl rand -base64 32)
//
// Then publish the code: docs/DEPLOY.md. Customers' containers are not created here: each
// integration brings its own container SAS URL.

targetScope = 'resourceGroup'

@description('Function app name (globally unique: <appName>.azurewebsites.net).')
@minLength(2)
@maxLength(60)
param appName string

@description('Region of every resource. Flex Consumption is available in a subset of regions (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Hosting plan: FlexConsumption (recommended) or Consumption (Linux Consumption, Y1; no new features, retiring).')
@allowed([
  'FlexConsumption'
  'Consumption'
])
param plan string = 'FlexConsumption'

@description('Node.js major version of the Functions runtime.')
@allowed([
  '20'
  '22'
])
param nodeVersion string = '22'

@description('SAS_ENCRYPTION_KEY: base64 of exactly 32 random bytes (openssl rand -base64 32). Encrypts stored SAS URLs; to rotate it, pass the old value in sasEncryptionKeysPrevious (docs/SECURITY.md).')
@secure()
param sasEncryptionKey string

@description('SAS_ENCRYPTION_KEYS_PREVIOUS: comma-separated earlier SAS_ENCRYPTION_KEY values (read only) while rotating; empty otherwise.')
@secure()
param sasEncryptionKeysPrevious string = ''

@description('WORKSPACE_TOKEN_SIGNING_KEY: base64 of at least 32 random bytes; signs owners\' workspace tokens. Empty: the owner routes refuse every request.')
@secure()
param workspaceTokenSigningKey string = ''

@description('PROBE_RATE_LIMIT: container checks (validate, PUT) per workspace per PROBE_RATE_WINDOW_SECONDS.')
@minValue(1)
param probeRateLimit int = 20

@description('PROBE_RATE_WINDOW_SECONDS: the window of PROBE_RATE_LIMIT.')
@minValue(1)
param probeRateWindowSeconds int = 3600

@description('EXPORT_SCHEDULE: six-field NCRONTAB of the export timer.')
param exportSchedule string = '0 */15 * * * *'

@description('EXPORT_QUEUE_NAME: queue of export jobs (its poison queue is <name>-poison).')
@minLength(3)
@maxLength(56)
param exportQueueName string = 'export-jobs'

@description('EXPORT_MAX_ROWS_PER_FILE: a larger delta is split into several files.')
@minValue(1)
param exportMaxRowsPerFile int = 250000

@description('EXPORT_MAX_BYTES_PER_FILE: approximate uncompressed bytes per file.')
@minValue(1)
param exportMaxBytesPerFile int = 536870912

@description('EXPORT_TIME_BUDGET_SECONDS: work per invocation before a continuation message takes over. Keep well under the function timeout (host.json functionTimeout, 10 minutes).')
@minValue(1)
param exportTimeBudgetSeconds int = 300

@description('EXPORT_LEASE_SECONDS: how long an export holds its (workspace, file type) lease; a crashed worker\'s lease expires after this. Keep it above the time budget plus one file\'s write (a worker that lost its lease stops at its next write: too short costs retries, not data).')
@minValue(1)
param exportLeaseSeconds int = 540

@description('Flex Consumption: memory per instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Flex Consumption: upper bound of instances the app scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Log Analytics retention (days).')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

param tags object = {}

var isFlex = plan == 'FlexConsumption'
var suffix = uniqueString(resourceGroup().id, appName)
// 3-24 lowercase letters and digits.
var storageName = take('st${toLower(replace(replace(appName, '-', ''), '_', ''))}${suffix}', 24)
var deploymentContainerName = 'app-package-${take(toLower(appName), 32)}'

// ---------------------------------------------------------------------------------------------
// The app's own storage account (never a customer's)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // The app reaches its tables, queues and blobs through the AzureWebJobsStorage connection string.
    allowSharedKeyAccess: true
    accessTier: 'Hot'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (isFlex) {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

var storageConnectionString = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'

// ---------------------------------------------------------------------------------------------
// Monitoring

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${appName}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${appName}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    IngestionMode: 'LogAnalytics'
  }
}

// ---------------------------------------------------------------------------------------------
// Plan and function app

resource hostingPlan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${appName}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: isFlex ? {
    name: 'FC1'
    tier: 'FlexConsumption'
  } : {
    name: 'Y1'
    tier: 'Dynamic'
  }
  properties: {
    reserved: true // Linux
  }
}

// Read by src/lib/config.ts (names and defaults there).
var appSettings = [
  {
    name: 'AzureWebJobsStorage'
    value: storageConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: insights.properties.ConnectionString
  }
  {
    name: 'SAS_ENCRYPTION_KEY'
    value: sasEncryptionKey
  }
  {
    name: 'SAS_ENCRYPTION_KEYS_PREVIOUS'
    value: sasEncryptionKeysPrevious
  }
  {
    name: 'WORKSPACE_TOKEN_SIGNING_KEY'
    value: workspaceTokenSigningKey
  }
  {
    name: 'PROBE_RATE_LIMIT'
    value: string(probeRateLimit)
  }
  {
    name: 'PROBE_RATE_WINDOW_SECONDS'
    value: string(probeRateWindowSeconds)
  }
  {
    name: 'EXPORT_SCHEDULE'
    value: exportSchedule
  }
  {
    name: 'EXPORT_QUEUE_NAME'
    value: exportQueueName
  }
  {
    name: 'EXPORT_MAX_ROWS_PER_FILE'
    value: string(exportMaxRowsPerFile)
  }
  {
    name: 'EXPORT_MAX_BYTES_PER_FILE'
    value: string(exportMaxBytesPerFile)
  }
  {
    name: 'EXPORT_TIME_BUDGET_SECONDS'
    value: string(exportTimeBudgetSeconds)
  }
  {
    name: 'EXPORT_LEASE_SECONDS'
    value: string(exportLeaseSeconds)
  }
  {
    // V8 collects the heap before it grows past this, so an export's memory stays flat whatever the
    // sync size (measured by `npm run bench`: 200k and 2M-row initial syncs within 1.2x, under 300 MiB).
    name: 'languageWorkers__node__arguments'
    value: '--max-old-space-size=256'
  }
]

// Flex Consumption sets the runtime in functionAppConfig (FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION are not allowed there) and deploys to a blob container.
var flexSettings = [
  {
    name: 'DEPLOYMENT_STORAGE_CONNECTION_STRING'
    value: storageConnectionString
  }
]

// Linux Consumption: runtime by app settings, content on an Azure Files share the platform creates.
var consumptionSettings = [
  {
    name: 'FUNCTIONS_EXTENSION_VERSION'
    value: '~4'
  }
  {
    name: 'FUNCTIONS_WORKER_RUNTIME'
    value: 'node'
  }
  {
    name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING'
    value: storageConnectionString
  }
  {
    name: 'WEBSITE_CONTENTSHARE'
    value: toLower(take('${appName}-${suffix}', 63))
  }
]

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  properties: union({
    serverFarmId: hostingPlan.id
    httpsOnly: true
    siteConfig: union({
      appSettings: concat(appSettings, isFlex ? flexSettings : consumptionSettings)
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }, isFlex ? {} : {
      linuxFxVersion: 'Node|${nodeVersion}'
    })
  }, isFlex ? {
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'StorageAccountConnectionString'
            storageAccountConnectionStringName: 'DEPLOYMENT_STORAGE_CONNECTION_STRING'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: nodeVersion
      }
    }
  } : {})
  dependsOn: [
    deploymentContainer
  ]
}

output functionAppName string = functionApp.name
output functionAppUrl string = 'https://${functionApp.properties.defaultHostName}'
output storageAccountName string = storage.name
output applicationInsightsName string = insights.name
output logAnalyticsWorkspaceName string = logs.name
